// Dependency rules the tree is held to (run by `npm run lint`, so CI fails on
// a violation): imports point one way, cli → pipeline → stages → methods →
// plan, and plan/ is the HE IR that everything reads and that reads nothing.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'plan-is-pure',
      comment: 'plan/ is the IR (steps, layouts, cost, interpreter): it imports nothing of ours outside plan/ (packages and Node builtins only)',
      severity: 'error',
      from: { path: '^plan/' },
      to: { pathNot: ['^plan/', '^node_modules/'], dependencyTypesNot: ['core'] },
    },
    {
      name: 'prune-reads-plans-not-the-compiler',
      comment: 'pruning methods read the compiled plan (plan/) and never the compiler\'s internals',
      severity: 'error',
      from: { path: '^prune/' },
      to: { path: '^export/(compile|compile/.*)\\.ts$' },
    },
    {
      name: 'methods-do-not-drive',
      comment: 'methods and stages below the drivers: nothing but cli/ imports cli/, and only cli/ and pipeline/ import pipeline/',
      severity: 'error',
      from: { path: '^(plan|he|export|prune|train|datasets|evaluate|common)/' },
      to: { path: '^(cli|pipeline)/' },
    },
    {
      name: 'pipeline-does-not-import-cli',
      severity: 'error',
      from: { path: '^pipeline/' },
      to: { path: '^cli/' },
    },
    {
      name: 'no-circular',
      comment: 'an import circle makes a module\'s meaning depend on load order',
      severity: 'error',
      from: { pathNot: '^test/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|dist-[^/]+|runs|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
