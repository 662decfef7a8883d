// Out of memory as a clear panic, not a bare trap (asc 0.28 transform, afterParse).
// AssemblyScript's allocator (~lib/rt/tlsf.ts growMemory) ends with `unreachable()`
// when memory.grow refuses; that shows up as "wasm trap: unreachable executed" with a
// stack, which does not say that the domain ran out of memory. This transform turns that
// one call into `__morgana_out_of_memory(size)` (assembly/runtime/oom.ts, a @global
// function), which prints what ran out and what to do, then crashes the domain.
// An AssemblyScript whose growMemory no longer has that shape fails the build here.
import { Node, NodeKind } from "assemblyscript";

const HOOK = "__morgana_out_of_memory";

/** Calls to unreachable() that follow a failed memory.grow, below `node`. */
function failedGrowTraps(node, found, underGrowCheck = false) {
  if (!node || typeof node !== "object") return found;
  if (Array.isArray(node)) {
    for (const n of node) failedGrowTraps(n, found, underGrowCheck);
    return found;
  }
  if (typeof node.kind !== "number") return found;
  if (node.kind === NodeKind.If) {
    const checksGrow = mentionsMemoryGrow(node.condition);
    failedGrowTraps(node.ifTrue, found, checksGrow);
    failedGrowTraps(node.ifFalse, found, false);
    return found;
  }
  if (underGrowCheck && node.kind === NodeKind.Call && node.expression.kind === NodeKind.Identifier && node.expression.text === "unreachable") {
    found.push(node);
    return found;
  }
  for (const key of ["statements", "expression", "body"]) if (key in node) failedGrowTraps(node[key], found, underGrowCheck);
  return found;
}

function mentionsMemoryGrow(node) {
  if (!node || typeof node !== "object") return false;
  if (node.kind === NodeKind.PropertyAccess && node.property?.text === "grow" && node.expression?.kind === NodeKind.Identifier && node.expression.text === "memory") return true;
  for (const key of ["expression", "left", "right", "operand", "args"]) {
    const v = node[key];
    if (Array.isArray(v) ? v.some(mentionsMemoryGrow) : mentionsMemoryGrow(v)) return true;
  }
  return false;
}

export default class OomTransform {
  afterParse(parser) {
    const tlsf = parser.sources.find((s) => s.internalPath === "~lib/rt/tlsf");
    if (!tlsf) return; // a runtime without TLSF (stub): nothing to rewrite
    const grow = tlsf.statements.find((s) => s.kind === NodeKind.FunctionDeclaration && s.name.text === "growMemory");
    const traps = grow ? failedGrowTraps(grow.body, []) : [];
    if (traps.length !== 1)
      throw new Error(`tools/oom/transform.mjs: expected one unreachable() after a failed memory.grow in ~lib/rt/tlsf.ts growMemory, found ${traps.length} (a different AssemblyScript? update the transform)`);
    const call = traps[0];
    call.expression = Node.createIdentifierExpression(HOOK, call.expression.range);
    call.args = [Node.createIdentifierExpression("size", call.range)];
  }
}
