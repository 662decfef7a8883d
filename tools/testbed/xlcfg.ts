// A small reader/writer for xl domain configuration files (xl.cfg(5)): enough to
// rewrite kernel/disk/name/on_* of a config before it goes into dom0, keeping
// every other setting as written.

export class XlConfigError extends Error {}

/** One `key = value` setting; `value` is the raw text (quotes and brackets kept). */
export interface XlEntry {
  key: string;
  value: string;
}

/** Parses xl config text into settings, in order. Throws XlConfigError naming the line. */
export function parseXl(text: string): XlEntry[] {
  const out: XlEntry[] = [];
  let i = 0;
  const line = () => text.slice(0, i).split("\n").length;
  const fail = (msg: string) => {
    throw new XlConfigError(`line ${line()}: ${msg}`);
  };
  const skipQuoted = () => {
    const q = text[i++];
    while (i < text.length && text[i] !== q && text[i] !== "\n") i++;
    if (text[i] !== q) fail(`unterminated string`);
    i++;
  };
  while (i < text.length) {
    const c = text[i];
    if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (/[\s;]/.test(c)) i++;
    else {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
      if (!m) fail(`expected a setting name, found ${JSON.stringify(text.slice(i, i + 20))}`);
      const key = m![0];
      i += key.length;
      while (text[i] === " " || text[i] === "\t") i++;
      if (text[i] !== "=") fail(`expected "=" after ${key}`);
      i++;
      while (text[i] === " " || text[i] === "\t") i++;
      const start = i;
      if (text[i] === "[") {
        i++;
        while (i < text.length && text[i] !== "]") {
          if (text[i] === '"' || text[i] === "'") skipQuoted();
          else if (text[i] === "#") while (i < text.length && text[i] !== "\n") i++;
          else i++;
        }
        if (text[i] !== "]") fail(`unterminated list for ${key}`);
        i++;
      } else if (text[i] === '"' || text[i] === "'") skipQuoted();
      else {
        while (i < text.length && !/[\n;#]/.test(text[i])) i++;
      }
      const value = text.slice(start, i).trim();
      if (!value) fail(`empty value for ${key}`);
      out.push({ key, value });
    }
  }
  return out;
}

/** The string inside a quoted value, or undefined when the value is not a string. */
export function xlStringValue(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  const m = /^(["'])(.*)\1$/s.exec(raw.trim());
  return m ? m[2] : undefined;
}

/** The strings of a list value (`[ 'a', "b" ]`). */
export function xlListValue(raw: string | undefined): string[] {
  if (!raw) return [];
  const s = raw.trim();
  if (!s.startsWith("[")) throw new XlConfigError(`expected a list, found ${s.slice(0, 40)}`);
  const items: string[] = [];
  const re = /"([^"\n]*)"|'([^'\n]*)'/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) items.push(m[1] ?? m[2]);
  return items;
}

/** Quotes a string for an xl config (xl has no escapes: quotes inside are refused). */
export function xlQuote(s: string): string {
  if (!s.includes('"')) return `"${s}"`;
  if (!s.includes("'")) return `'${s}'`;
  throw new XlConfigError(`cannot quote a value holding both kinds of quote: ${s}`);
}

export function xlList(items: string[]): string {
  return `[ ${items.map(xlQuote).join(", ")} ]`;
}

/** The target (file or device) of a disk spec, in keyword or positional syntax. */
export function diskTarget(spec: string): string {
  const kw = /(?:^|,)\s*target\s*=\s*(.*)$/.exec(spec);
  if (kw) return kw[1].trim();
  const first = spec.split(",")[0].trim();
  if (first.includes("=")) return "";
  return first.replace(/^(phy|file|tap|aio|qcow2?|vhd|raw):/, "");
}

/** The same disk spec with its target replaced (keyword target= is always last). */
export function withDiskTarget(spec: string, target: string): string {
  if (/(?:^|,)\s*target\s*=/.test(spec)) return spec.replace(/((?:^|,)\s*target\s*=\s*).*$/, `$1${target}`);
  const parts = spec.split(",");
  if (parts[0].includes("=")) return `${spec}, target=${target}`;
  parts[0] = target;
  return parts.join(",");
}

export function serializeXl(entries: XlEntry[]): string {
  return entries.map((e) => `${e.key} = ${e.value}`).join("\n") + "\n";
}
