/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test', '<rootDir>/lambda', '<rootDir>/gateway', '<rootDir>/cli'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }],
    '^.+\\.pem$': '<rootDir>/test/helpers/text-transform.js',
  },
  moduleFileExtensions: ['ts', 'js', 'json', 'pem'],
  snapshotSerializers: ['<rootDir>/test/helpers/asset-hash-serializer.js'],
  // One directory per run for everything the tests write (the run's TMPDIR, and each Lambda bundled
  // once); removed after the run, which fails if a cdk.out folder was left in the system's temp
  // directory (test/helpers/test-run.ts).
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  // A worker per core: jest's own default (cores - 1) runs everything in one process on a two-core
  // machine, where the suites, mostly synths, keep both cores busy. Memory is not the limit: a
  // worker peaks at about 1 GB.
  maxWorkers: '100%',
  // Synthesizing a stack takes seconds on two cores; a generous timeout is not a timing assertion.
  testTimeout: 120000,
};
