/**
 * The compiler's entry points: a lowered chain (export/lower) to an HE plan
 * (plan/). The phases live in export/compile/; nothing outside export/ needs
 * more than this file.
 */
export { compileChain } from './compile/driver.js';
export { COMPILER_VERSION, type BlockMode, type CompileOptions } from './compile/options.js';
