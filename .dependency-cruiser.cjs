/**
 * The rooms of this repository and what each may import (npm run lint:deps, part of npm test).
 * - No import cycles anywhere.
 * - contracts/ holds what two programs agree on; it imports nothing of theirs.
 * - The programs (the CDK app in bin/ and lib/, the gateway, the CLI, each Lambda) import contracts/
 *   and their own sources, never another program's src/.
 * Tests and benchmarks may reach into what they test.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      severity: 'error',
      comment: 'An import cycle: split the shared part into a module of its own.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'contracts-stand-alone',
      severity: 'error',
      comment: 'contracts/ is what programs agree on; it must not depend on any of them.',
      from: { path: '^contracts/' },
      to: { path: '^(bin|lib|cli|gateway|lambda|scripts|test)/' },
    },
    {
      name: 'app-owns-no-runtime-code',
      severity: 'error',
      comment: 'The CDK app refers to runtime code by path (bundling), never by import: share through contracts/.',
      from: { path: '^(bin|lib)/' },
      to: { path: '^(cli|gateway|lambda)/' },
    },
    {
      name: 'gateway-stands-alone',
      severity: 'error',
      comment: 'The gateway ships as its own image: only its src/ and contracts/.',
      from: { path: '^gateway/src/' },
      to: { path: '^(bin|lib|cli|lambda|scripts|test|gateway/(test|bench))/' },
    },
    {
      name: 'cli-stands-alone',
      severity: 'error',
      comment: 'The CLI reads the stack through its outputs and contracts/, never the app, the gateway or a Lambda.',
      from: { path: '^cli/src/' },
      to: { path: '^(bin|lib|gateway|lambda|scripts|test)/' },
    },
    {
      name: 'lambda-stands-alone',
      severity: 'error',
      comment: 'Each Lambda is bundled on its own: its src/, contracts/ and the committed assets it inlines.',
      from: { path: '^lambda/([^/]+)/src/' },
      to: { path: '^(bin|lib|cli|gateway|scripts|test)/|^lambda/(?!$1/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)(dist|cdk\\.out|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'] },
  },
};
