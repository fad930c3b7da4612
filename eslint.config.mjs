// ESLint 9 flat config: typescript-eslint's recommended rules on src/ and test/, ESLint's
// recommended rules on the plain-JS plugins, bin and web page. Formatting is Prettier's job
// (`npm run format`), so no stylistic rules here. `npm run lint` runs this and `prettier --check`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: ['dist/**', '.venv*/**', 'node_modules/**', '.native/**', 'runs/**', '.test-output/**', 'oclif.manifest.json', 'web/*.min.js'],
  },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // require() is deliberate here: optional and native modules (tfjs-node, resvg, plugin
      // files) are loaded lazily, only when used, so a missing one fails where it is needed.
      '@typescript-eslint/no-require-imports': 'off',
      // Omitting keys by destructuring (`const { timestamp, ...rest } = o`) is the codebase's way
      // to drop fields; `_name` marks a binding kept on purpose.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { ignoreRestSiblings: true, argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      // Control characters in regexes are deliberate: stripping ANSI escapes and rejecting control bytes.
      'no-control-regex': 'off',
      // No explicit `any` and no `as unknown as` casts (src/ and test/ have none): type the value,
      // or narrow it with a check; where a cast is the clearest (a test's deliberately malformed
      // object), one `as` with a comment saying why.
      '@typescript-eslint/no-explicit-any': 'error',
      'no-restricted-syntax': [
        'error',
        {
          selector: "TSAsExpression[expression.type='TSAsExpression'][expression.typeAnnotation.type='TSUnknownKeyword']",
          message: 'no `as unknown as` casts: type the value, or narrow it with a check.',
        },
      ],
    },
  },
  {
    files: ['plugins/**/*.js', 'bin/**/*.js', '**/*.cjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node } },
  },
  {
    files: ['web/**/*.js'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'script', globals: { ...globals.browser } },
  },
  {
    files: ['eslint.config.mjs'],
    extends: [js.configs.recommended],
    languageOptions: { sourceType: 'module', globals: { ...globals.node } },
  },
);
