// typescript-eslint with type information: floating promises are errors, and the pure core in
// src/shared may not import the queue or storage SDKs.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'scratch/**', 'bench/results/**', 'coverage/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', process: 'readonly', module: 'writable' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['src/shared/**/*.ts'],
    ignores: ['src/shared/storage/**', 'src/shared/queue/**'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['bullmq', 'ioredis', '@aws-sdk/*'], message: 'the core in src/shared must not import queue or storage SDKs; use the adapters' },
        ],
      }],
    },
  },
);
