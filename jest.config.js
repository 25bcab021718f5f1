// Tests run on the compiled output (npm test builds first), as native ES modules:
// tfjs, node-seal and the worker threads all load the same JS the CLI runs.
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/dist/test'],
  testMatch: ['**/*.test.js'],
  transform: {},
  testTimeout: 120000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/jest-plain-summary.js'],
};
