/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cdi-containerimage-server: serves the one disk file of a container disk image to the importer
 * of the same pod (registry `pullMethod: node`). The importer pod's init container copies this
 * static binary into a shared emptyDir; the container disk image (often `FROM scratch`, with no
 * libc) runs it from there:
 *
 *   /shared/server -p 8100 -image-dir /disk -ready-file /shared/ready -done-file /shared/done
 *
 * It checks that the image directory holds exactly one regular file and that the image is not a
 * bootc image, listens on localhost:PORT (the pod's loopback address from /etc/hosts), writes the
 * file's name into the ready file, serves GET/HEAD of `/<name>` (with byte ranges) and
 * `/info` (`{"env":[...]}`: the image's environment), and exits once the importer creates the
 * done file. Each connection is served by a child process, one request per connection.
 * The command line and behaviour follow CDI's tools/cdi-containerimage-server.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

extern char** environ;

#define REQUEST_MAX 8192

static void fatal(const char* what, const char* detail) {
  fprintf(stderr, "%s: %s\n", what, detail);
  exit(1);
}

static int is_dir(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The one regular file of `dir`; exits as CDI's server does otherwise. */
static void image_filename(const char* dir, char* out, size_t size) {
  DIR* d = opendir(dir);
  if (d == NULL)
    fatal("Failed get image filename", strerror(errno));
  int count = 0;
  struct dirent* e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    count++;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
      count = 99;
    snprintf(out, size, "%s", e->d_name);
  }
  closedir(d);
  if (count != 1)
    fatal("Failed get image filename", "Invalid container image");
}

/* The address `localhost` has in /etc/hosts (the pod's loopback), else 127.0.0.1. */
static struct in_addr localhost_address(void) {
  struct in_addr addr;
  inet_pton(AF_INET, "127.0.0.1", &addr);
  FILE* f = fopen("/etc/hosts", "r");
  if (f == NULL)
    return addr;
  char line[512];
  while (fgets(line, sizeof line, f) != NULL) {
    char ip[64];
    char rest[448];
    if (line[0] == '#' || sscanf(line, "%63s %447[^\n]", ip, rest) != 2)
      continue;
    struct in_addr candidate;
    if (inet_pton(AF_INET, ip, &candidate) != 1)
      continue;
    for (char* name = strtok(rest, " \t"); name != NULL; name = strtok(NULL, " \t")) {
      if (strcmp(name, "localhost") == 0) {
        fclose(f);
        return candidate;
      }
    }
  }
  fclose(f);
  return addr;
}

static void send_all(int fd, const char* data, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, data, len);
    if (n <= 0) {
      if (n < 0 && errno == EINTR)
        continue;
      exit(0);
    }
    data += n;
    len -= (size_t)n;
  }
}

static void respond(int fd, const char* status, const char* type, const char* body) {
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   status, type, strlen(body));
  send_all(fd, head, (size_t)n);
  send_all(fd, body, strlen(body));
}

/* `{"env":[...]}` with the process's environment, JSON-escaped. */
static void respond_info(int fd) {
  size_t cap = 4096, len = 0;
  char* body = malloc(cap);
  if (body == NULL)
    exit(1);
#define PUT(c)                   \
  do {                           \
    if (len + 8 >= cap) {        \
      cap *= 2;                  \
      body = realloc(body, cap); \
      if (body == NULL)          \
        exit(1);                 \
    }                            \
    body[len++] = (c);           \
  } while (0)
  const char* open = "{\"env\":[";
  for (const char* p = open; *p; p++)
    PUT(*p);
  for (char** e = environ; *e != NULL; e++) {
    if (e != environ)
      PUT(',');
    PUT('"');
    for (const unsigned char* p = (const unsigned char*)*e; *p; p++) {
      if (*p == '"' || *p == '\\') {
        PUT('\\');
        PUT((char)*p);
      } else if (*p < 0x20) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\u%04x", *p);
        for (char* q = esc; *q; q++)
          PUT(*q);
      } else {
        PUT((char)*p);
      }
    }
    PUT('"');
  }
  PUT(']');
  PUT('}');
  PUT('\n');
  PUT('\0');
#undef PUT
  respond(fd, "200 OK", "application/json", body);
}

/* Parses `bytes=A-B` / `bytes=A-` / `bytes=-N` against `size`; 0 when absent, -1 when bad. */
static int parse_range(const char* request, off_t size, off_t* start, off_t* end) {
  const char* h = strcasestr(request, "\r\nRange:");
  if (h == NULL)
    return 0;
  h += 8;
  while (*h == ' ')
    h++;
  if (strncmp(h, "bytes=", 6) != 0)
    return -1;
  h += 6;
  char* stop;
  if (*h == '-') {
    long long n = strtoll(h + 1, &stop, 10);
    if (n <= 0)
      return -1;
    *start = n >= size ? 0 : size - n;
    *end = size - 1;
    return 1;
  }
  long long a = strtoll(h, &stop, 10);
  if (stop == h || *stop != '-')
    return -1;
  const char* b = stop + 1;
  long long z = (*b >= '0' && *b <= '9') ? strtoll(b, &stop, 10) : (long long)size - 1;
  if (a >= size || z < a)
    return -1;
  *start = a;
  *end = z >= size ? size - 1 : z;
  return 1;
}

static void serve_file(int fd, const char* request, int head_only, const char* path) {
  int file = open(path, O_RDONLY);
  struct stat st;
  if (file < 0 || fstat(file, &st) != 0) {
    respond(fd, "404 Not Found", "text/plain", "404 page not found\n");
    return;
  }
  off_t start = 0, end = st.st_size - 1;
  int ranged = parse_range(request, st.st_size, &start, &end);
  char head[512];
  int n;
  if (ranged < 0) {
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 416 Requested Range Not Satisfiable\r\nContent-Range: bytes */%lld\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                 (long long)st.st_size);
    send_all(fd, head, (size_t)n);
    return;
  }
  off_t length = st.st_size == 0 ? 0 : end - start + 1;
  if (ranged > 0) {
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 206 Partial Content\r\nAccept-Ranges: bytes\r\n"
                 "Content-Type: application/octet-stream\r\nContent-Range: bytes %lld-%lld/%lld\r\n"
                 "Content-Length: %lld\r\nConnection: close\r\n\r\n",
                 (long long)start, (long long)end, (long long)st.st_size, (long long)length);
  } else {
    n = snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\n"
                 "Content-Type: application/octet-stream\r\nContent-Length: %lld\r\n"
                 "Connection: close\r\n\r\n",
                 (long long)length);
  }
  send_all(fd, head, (size_t)n);
  if (head_only)
    return;
  off_t offset = start;
  while (length > 0) {
    ssize_t sent = sendfile(fd, file, &offset, length > (1 << 30) ? (1 << 30) : (size_t)length);
    if (sent <= 0) {
      if (sent < 0 && errno == EINTR)
        continue;
      exit(0);
    }
    length -= sent;
  }
}

/* Serves one request on `fd` (in a child process). */
static void serve(int fd, const char* dir, const char* filename) {
  char request[REQUEST_MAX + 1];
  size_t len = 0;
  while (len < REQUEST_MAX) {
    ssize_t n = read(fd, request + len, REQUEST_MAX - len);
    if (n <= 0)
      exit(0);
    len += (size_t)n;
    request[len] = '\0';
    if (strstr(request, "\r\n\r\n") != NULL)
      break;
  }
  char method[16], target[2048];
  if (sscanf(request, "%15s %2047s", method, target) != 2) {
    respond(fd, "400 Bad Request", "text/plain", "bad request\n");
    return;
  }
  int head_only = strcmp(method, "HEAD") == 0;
  if (!head_only && strcmp(method, "GET") != 0) {
    respond(fd, "405 Method Not Allowed", "text/plain", "method not allowed\n");
    return;
  }
  char* query = strchr(target, '?');
  if (query != NULL)
    *query = '\0';
  if (strcmp(target, "/info") == 0) {
    respond_info(fd);
    return;
  }
  if (target[0] != '/' || strcmp(target + 1, filename) != 0) {
    respond(fd, "404 Not Found", "text/plain", "404 page not found\n");
    return;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, filename);
  serve_file(fd, request, head_only, path);
}

int main(int argc, char** argv) {
  int port = 8100;
  const char* dir = ".";
  const char* ready = "/shared/ready";
  const char* done = "/shared/done";
  for (int i = 1; i < argc; i++) {
    const char* flag = argv[i];
    while (*flag == '-')
      flag++;
    if (i + 1 >= argc)
      fatal("missing value of flag", argv[i]);
    const char* value = argv[++i];
    if (strcmp(flag, "p") == 0)
      port = atoi(value);
    else if (strcmp(flag, "image-dir") == 0)
      dir = value;
    else if (strcmp(flag, "ready-file") == 0)
      ready = value;
    else if (strcmp(flag, "done-file") == 0)
      done = value;
    else
      fatal("flag provided but not defined", argv[i - 1]);
  }
  if (port <= 0 || port > 65535)
    fatal("invalid port", argv[0]);
  if (is_dir("/sysroot") || is_dir("/ostree")) {
    fatal("bootc image detected",
          "this image contains an ostree-based bootable OS and cannot be imported as a regular "
          "container disk; bootc-to-disk conversion is not yet implemented");
  }
  char filename[1024];
  image_filename(dir, filename, sizeof filename);
  printf("%s\n%s/%s\n", dir, dir, filename);

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  addr.sin_addr = localhost_address();
  char shown[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr.sin_addr, shown, sizeof shown);
  if (listener < 0 || bind(listener, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(listener, 16) != 0) {
    fprintf(stderr, "Failed listening on %s:%d err: %s\n", shown, port, strerror(errno));
    return 1;
  }
  int rf = open(ready, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (rf < 0 || write(rf, filename, strlen(filename)) != (ssize_t)strlen(filename)) {
    fprintf(stderr, "Failed creating \"ready\" file: %s\n", strerror(errno));
    return 1;
  }
  close(rf);
  printf("Serving %s on HTTP port: %d\n", dir, port);
  fflush(stdout);
  /* Children are reaped by the kernel; a peer closing early must not kill the server. */
  struct sigaction sa = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
  sigaction(SIGCHLD, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  struct pollfd pfd = {.fd = listener, .events = POLLIN};
  for (;;) {
    if (access(done, F_OK) == 0)
      break;
    int ready_count = poll(&pfd, 1, 1000);
    if (ready_count <= 0)
      continue;
    int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    pid_t child = fork();
    if (child == 0) {
      close(listener);
      serve(fd, dir, filename);
      shutdown(fd, SHUT_WR);
      close(fd);
      _exit(0);
    }
    close(fd);
  }
  unlink(done);
  unlink(ready);
  close(listener);
  printf("Importer has completed\n");
  return 0;
}
