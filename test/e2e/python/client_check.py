# SPDX-License-Identifier: Apache-2.0
"""The official Kubernetes Python client against the sandbox (KUBECONFIG in the environment).

Lists and watches DataVolumes, creates a namespace and patches with the strategic merge patch
and JSON merge patch content types. Prints one JSON object with what it saw; the test asserts.
"""
import json
import os

from kubernetes import client, config, watch

config.load_kube_config(config_file=os.environ["KUBECONFIG"])
core = client.CoreV1Api()
custom = client.CustomObjectsApi()
GROUP, VERSION, PLURAL, NS = "cdi.kubevirt.io", "v1beta1", "datavolumes", "default"
out = {}

dv = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "DataVolume",
    "metadata": {"name": "py-dv", "labels": {"from": "python"}},
    "spec": {
        "source": {"http": {"url": "http://127.0.0.1:1/disk.img"}},
        "storage": {"resources": {"requests": {"storage": "16Mi"}}},
    },
}
custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, dv)
listed = custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, label_selector="from=python")
out["listed"] = [i["metadata"]["name"] for i in listed["items"]]
list_rv = listed["metadata"]["resourceVersion"]

# A JSON merge patch (the client's default for a dict body on custom objects).
custom.patch_namespaced_custom_object(
    GROUP, VERSION, NS, PLURAL, "py-dv", {"metadata": {"labels": {"patched": "merge"}}}
)

# Watch from the list's resourceVersion: the patch arrives as MODIFIED.
w = watch.Watch()
events = []
for ev in w.stream(
    custom.list_namespaced_custom_object,
    GROUP, VERSION, NS, PLURAL,
    resource_version=list_rv,
    timeout_seconds=20,
):
    events.append([ev["type"], ev["object"]["metadata"]["name"], ev["object"]["metadata"]["labels"].get("patched")])
    if ev["type"] == "MODIFIED":
        w.stop()
out["watched"] = events

ns = core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py-ns")))
out["namespace"] = ns.metadata.name
out["namespaceListed"] = "py-ns" in [n.metadata.name for n in core.list_namespace().items]

# A pod bound to a node that does not exist: it stays Pending, its spec can be patched.
pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
    spec=client.V1PodSpec(
        node_name="elsewhere",
        containers=[
            client.V1Container(name="a", image="busybox", command=["sleep", "1"]),
            client.V1Container(name="b", image="busybox"),
        ],
    ),
)
core.create_namespaced_pod("py-ns", pod)


def patch_pod(body, content_type):
    """PATCH with a chosen content type: this client's patch_* methods send json-patch+json."""
    return core.api_client.call_api(
        "/api/v1/namespaces/{namespace}/pods/{name}", "PATCH",
        path_params={"namespace": "py-ns", "name": "py-pod"},
        header_params={"Content-Type": content_type, "Accept": "application/json"},
        body=body, response_type="V1Pod", auth_settings=["BearerToken"],
        _return_http_data_only=True,
    )


# Strategic merge: the containers list merges by name, so "a" keeps its command and "b" stays.
smp = patch_pod(
    {"spec": {"containers": [{"name": "a", "image": "busybox:2"}]}},
    "application/strategic-merge-patch+json",
)
out["strategic"] = [[c.name, c.image, c.command] for c in smp.spec.containers]
# JSON merge: a null deletes a label, others are set.
merged = patch_pod(
    {"metadata": {"labels": {"app": None, "tier": "x"}}}, "application/merge-patch+json"
)
out["mergeLabels"] = merged.metadata.labels
print(json.dumps(out))
