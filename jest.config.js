/** Native ESM jest with @swc/jest: TypeScript is stripped, not type-checked (`npm run build` does that). */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
  },
  moduleNameMapper: {
    '^#(shared|functions|infra)/(.*)\\.js$': '<rootDir>/$1/$2.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  setupFiles: ['<rootDir>/test/setup-env.ts'],
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // test/radosgw needs a one-node Ceph: .ci/radosgw-tests.sh starts it and runs those tests.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/radosgw/'],
  testTimeout: 30000,
};
