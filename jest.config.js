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
  // Synthesizing a stack takes seconds on two cores; a generous timeout is not a timing assertion.
  testTimeout: 120000,
};
