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
      from: { path: '^(plan|he|export|prune|train|datasets|evaluate|common|client|server|search)/' },
      to: { path: '^(cli|pipeline)/' },
    },
    {
      name: 'pipeline-does-not-import-cli',
      severity: 'error',
      from: { path: '^pipeline/' },
      to: { path: '^cli/' },
    },
    {
      name: 'client-runs-in-a-browser',
      comment: 'heprune/client holds the secret key in a page or a CLI: nothing it reaches may need tfjs, the file system, training, datasets or the server side',
      severity: 'error',
      from: { path: '^client/' },
      to: { path: ['^(train|datasets|pipeline|cli|server|evaluate|export|prune|api)/', 'node_modules/@tensorflow/', '^(node:)?fs(/promises)?$', '^he/(context|seal-module)\\.ts$'], reachable: true },
    },
    {
      name: 'server-holds-no-training',
      comment: 'heprune/server runs an export: it needs the plan, he/ and the artifact reader, never tfjs or training',
      severity: 'error',
      from: { path: '^server/' },
      to: { path: ['^(train|datasets|prune)/', 'node_modules/@tensorflow/'], reachable: true },
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
    // A worktree links node_modules to another checkout's: keep the link's path, so packages stay under node_modules/.
    preserveSymlinks: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
