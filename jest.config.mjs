/** jest in ESM mode: ts-jest transpiles (isolatedModules), `npm run lint` type-checks. */
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^nestjs-thorn$': '<rootDir>/lib/index.ts', '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  // a fixture app's own spec, run inside that app by test/compat/run.mjs
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/compat/app/'],
  testTimeout: 30000,
};
