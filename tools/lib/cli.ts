// The command lines of the tools: node's util.parseArgs in strict mode (an unknown flag or a
// missing value is refused, never ignored), whole numbers checked against their range, and
// one way to report a bad command line: "<tool>: <what is wrong>", the usage, exit 1.
import { parseArgs, ParseArgsConfig } from "node:util";
import { UsageError } from "./paths.ts";

export { UsageError };

/** parseArgs with strict: true (of process.argv.slice(2) unless `args`); its errors become UsageErrors in our words. */
export function parseCommandLine<const T extends Omit<ParseArgsConfig, "strict">>(
  config: T,
): ReturnType<typeof parseArgs<T & { strict: true }>> {
  try {
    return parseArgs({ ...config, args: config.args ?? process.argv.slice(2), strict: true } as T & { strict: true });
  } catch (e) {
    const err = e as Error & { code?: string };
    if (!err.code?.startsWith("ERR_PARSE_ARGS_")) throw e;
    // node's messages are long ("Unknown option '--x'. To specify a positional argument ..."): keep the first sentence
    const unknown = /^Unknown option '([^']+)'/.exec(err.message);
    const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(err.message);
    const first = err.message.replace(/\. .*$/s, "");
    throw new UsageError(
      unknown ? `unknown option ${unknown[1]}` : missing ? `${missing[1]} needs a value` : first[0].toLowerCase() + first.slice(1),
    );
  }
}

/** parseCommandLine for a script's top level: a bad command line prints "<tool>: ..." and the usage and exits 1. */
export function parseOrExit<const T extends Omit<ParseArgsConfig, "strict">>(
  tool: string,
  usage: string,
  config: T,
): ReturnType<typeof parseArgs<T & { strict: true }>> {
  try {
    return parseCommandLine(config);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    reportUsage(tool, usage, e.message);
    process.exit(1);
  }
}

/** integerOption for a script's top level: a bad number prints "<tool>: ..." and the usage and exits 1. */
export function integerOrExit(
  tool: string,
  usage: string,
  flag: string,
  raw: string | undefined,
  min: number,
  max?: number,
): number | undefined {
  try {
    return integerOption(flag, raw, min, max);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    reportUsage(tool, usage, e.message);
    process.exit(1);
  }
}

/** A whole number from `min` to `max` given as option `flag` (undefined when not given). */
export function integerOption(flag: string, raw: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (raw === undefined) return undefined;
  const n = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(
      `${flag} ${JSON.stringify(raw)}: give a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}`,
    );
  return n;
}

/** Prints "<tool>: <message>" and the usage to stderr; the caller exits 1. */
export function reportUsage(tool: string, usage: string, message: string): void {
  console.error(`${tool}: ${message}\n${usage}`);
}

/** Runs a tool's `main`: a UsageError prints the usage and exits 1; otherwise exits with main's code. */
export function runCli(
  tool: string,
  usage: string,
  main: () => Promise<number | void>,
  onError: (e: unknown) => number = (e) => {
    console.error(`${tool}: ${(e as Error)?.message ?? e}`);
    return 1;
  },
): void {
  main().then(
    (code) => process.exit(code ?? 0),
    (e) => {
      if (e instanceof UsageError) {
        reportUsage(tool, usage, e.message);
        process.exit(1);
      }
      process.exit(onError(e));
    },
  );
}
