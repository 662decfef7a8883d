// Out of memory as a clear panic, not a bare trap (asc 0.28 transform, afterParse).
// AssemblyScript's allocator (~lib/rt/tlsf.ts growMemory) ends with `unreachable()`
// when memory.grow refuses; that shows up as "wasm trap: unreachable executed" with a
// stack, which does not say that the domain ran out of memory. This transform turns that
// one call into `__morgana_out_of_memory(size)` (assembly/runtime/oom.ts, a @global
// function), which prints what ran out and what to do, then crashes the domain.
// An AssemblyScript whose growMemory no longer has that shape fails the build here.
import { Node, NodeKind } from "assemblyscript";

/** @typedef {import("assemblyscript").CallExpression} CallExpression */
/** @typedef {import("assemblyscript").FunctionDeclaration} FunctionDeclaration */
/** @typedef {import("assemblyscript").IdentifierExpression} IdentifierExpression */
/** @typedef {import("assemblyscript").IfStatement} IfStatement */
/** @typedef {import("assemblyscript").Parser} Parser */
/** @typedef {import("assemblyscript").PropertyAccessExpression} PropertyAccessExpression */
/** @typedef {Node & Record<string, unknown>} AnyNode an AST node seen as a record: the walks below look into any field */

const HOOK = "__morgana_out_of_memory";

/**
 * Calls to unreachable() that follow a failed memory.grow, below `node`.
 * @param {unknown} node an AST node, an array of them, or anything else (skipped)
 * @param {CallExpression[]} found
 * @param {boolean} [underGrowCheck]
 * @returns {CallExpression[]}
 */
function failedGrowTraps(node, found, underGrowCheck = false) {
  if (!node || typeof node !== "object") return found;
  if (Array.isArray(node)) {
    for (const n of node) failedGrowTraps(n, found, underGrowCheck);
    return found;
  }
  const any = /** @type {AnyNode} */ (node);
  if (typeof any.kind !== "number") return found;
  if (any.kind === NodeKind.If) {
    const s = /** @type {IfStatement} */ (node);
    const checksGrow = mentionsMemoryGrow(s.condition);
    failedGrowTraps(s.ifTrue, found, checksGrow);
    failedGrowTraps(s.ifFalse, found, false);
    return found;
  }
  if (underGrowCheck && any.kind === NodeKind.Call) {
    const call = /** @type {CallExpression} */ (node);
    if (call.expression.kind === NodeKind.Identifier && /** @type {IdentifierExpression} */ (call.expression).text === "unreachable") {
      found.push(call);
      return found;
    }
  }
  for (const key of ["statements", "expression", "body"]) if (key in any) failedGrowTraps(any[key], found, underGrowCheck);
  return found;
}

/**
 * True when `node` (an expression, or anything else) mentions memory.grow.
 * @param {unknown} node
 * @returns {boolean}
 */
function mentionsMemoryGrow(node) {
  if (!node || typeof node !== "object") return false;
  const any = /** @type {AnyNode} */ (node);
  if (any.kind === NodeKind.PropertyAccess) {
    const pa = /** @type {PropertyAccessExpression} */ (node);
    if (
      pa.property?.text === "grow" &&
      pa.expression?.kind === NodeKind.Identifier &&
      /** @type {IdentifierExpression} */ (pa.expression).text === "memory"
    )
      return true;
  }
  for (const key of ["expression", "left", "right", "operand", "args"]) {
    const v = any[key];
    if (Array.isArray(v) ? v.some(mentionsMemoryGrow) : mentionsMemoryGrow(v)) return true;
  }
  return false;
}

export default class OomTransform {
  /** @param {Parser} parser */
  afterParse(parser) {
    const tlsf = parser.sources.find((s) => s.internalPath === "~lib/rt/tlsf");
    if (!tlsf) return; // a runtime without TLSF (stub): nothing to rewrite
    const grow = /** @type {FunctionDeclaration | undefined} */ (
      tlsf.statements.find(
        (s) => s.kind === NodeKind.FunctionDeclaration && /** @type {FunctionDeclaration} */ (s).name.text === "growMemory",
      )
    );
    const traps = grow ? failedGrowTraps(grow.body, []) : [];
    if (traps.length !== 1)
      throw new Error(
        `tools/oom/transform.mjs: expected one unreachable() after a failed memory.grow in ~lib/rt/tlsf.ts growMemory, found ${traps.length} (a different AssemblyScript? update the transform)`,
      );
    const call = traps[0];
    call.expression = Node.createIdentifierExpression(HOOK, call.expression.range);
    call.args = [Node.createIdentifierExpression("size", call.range)];
  }
}
