// SPDX-License-Identifier: Apache-2.0
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/**
 * The folder map of docs/architecture.md, enforced: which top-level folders each folder's product
 * code may import (test files may also reach test/ helpers). `cmd/` may import every verb.
 */
const TOP_LEVEL = ['common', 'native', 'importer', 'uploadproxy', 'controller', 'cmd', 'test'];
const MAY_IMPORT = {
  common: [],
  native: ['common'],
  importer: ['common', 'native'],
  uploadproxy: ['common', 'importer'],
  controller: ['common'],
  cmd: ['common', 'importer', 'uploadproxy', 'controller'],
};
/** Within a folder: subfolders that must not import some of their siblings. */
const SIBLINGS_MAY_NOT = [
  // One process or tool each; what they share is uploadproxy/protocol.
  ...['apiserver', 'proxy', 'server', 'client'].map((p) => ({
    folder: `uploadproxy/${p}`,
    not: ['apiserver', 'proxy', 'server', 'client'].filter((q) => q !== p),
  })),
  { folder: 'uploadproxy/protocol', not: ['apiserver', 'proxy', 'server', 'client'] },
  // The stages of the data path know nothing of the pipeline that joins them or of the CLI.
  ...['sources', 'decompress', 'format', 'sink', 'archive', 'checksum', 'progress'].map((f) => ({
    folder: `importer/${f}`,
    not: ['pipeline', 'cli'],
  })),
];
/** A rule for `folder`'s product code: relative imports whose first named segment is banned. */
const restrict = (folder, groups) => ({
  files: [`${folder}/**/*.ts`],
  ignores: ['**/*.test.ts'],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: groups.map(({ banned, message }) => ({
          regex: `^(\\.\\./)+(${banned.join('|')})(/|$)`,
          message: `${message} (docs/architecture.md)`,
        })),
      },
    ],
  },
});
const topLevelGroup = (folder) => ({
  banned: TOP_LEVEL.filter((f) => f !== folder && !MAY_IMPORT[folder].includes(f)),
  message: `${folder}/ may import only ${['itself', ...MAY_IMPORT[folder]].join(', ')}`,
});
// A later block replaces an earlier one's options for the same files, so each subfolder's block
// repeats its top-level folder's group.
const folderRules = [
  ...Object.keys(MAY_IMPORT).map((folder) => restrict(folder, [topLevelGroup(folder)])),
  ...SIBLINGS_MAY_NOT.map(({ folder, not }) =>
    restrict(folder, [
      topLevelGroup(folder.split('/')[0]),
      { banned: not, message: `${folder}/ may not import ${not.join(', ')}` },
    ]),
  ),
];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-test/**',
      '.image/**',
      'node_modules/**',
      'native/build/**',
      'coverage/**',
      'native/fuzz/out/**',
      '.tmp/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      // Product code narrows instead (tests and their helpers may assert).
      '@typescript-eslint/no-non-null-assertion': 'error',
      '@typescript-eslint/explicit-function-return-type': ['error', { allowExpressions: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      // Caps from pepr's lint (CONTRIBUTING.md). Warnings, not errors: they guide review without
      // blocking a protocol engine whose states are clearer in one function.
      complexity: ['warn', 15],
      'max-depth': ['warn', 4],
      'max-params': ['warn', 4],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  // JavaScript cannot declare return types.
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { '@typescript-eslint/explicit-function-return-type': 'off' },
  },
  {
    files: ['**/*.test.ts', 'test/**/*.ts', 'native/test-helpers/**/*.ts'],
    rules: {
      '@typescript-eslint/explicit-function-return-type': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...folderRules,
  prettier,
);
