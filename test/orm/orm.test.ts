// @orm (tools/orm/transform.mjs): the ormtest app in the harness (every generated
// method against SQLite), misuse that must end the unikernel, and the transform itself:
// its compile errors, the SQL it generates, and that apps without @orm are unchanged.
import { beforeAll, describe, expect, test } from "vitest";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { runWasm } from "../../tools/harness/run.ts";
import { Disk } from "../../tools/harness/blkback.ts";
import { ROOT, BUILD_DIR, wasmPath } from "../../tools/lib/paths.ts";

const run = promisify(execFile);
const ASC = join(ROOT, "node_modules", ".bin", "asc");
const CASES = join(BUILD_DIR, "orm-cases");
const SUPPORTED = "supported: string, string | null, i8, i16, i32, i64, u8, u16, u32, isize, f32, f64, bool";

describe("ormtest in the harness", () => {
  test("every store method and query kind passes, and it ends with TEST PASS", () => {
    const r = runWasm({ wasm: wasmPath("ormtest") });
    expect(r.outcome).toBe("poweroff");
    const lines = r.console.trimEnd().split("\n");
    expect(lines.filter((l) => l.startsWith("not ok"))).toEqual([]);
    expect(lines.filter((l) => l.startsWith("ok ")).length).toBeGreaterThan(130);
    expect(lines.at(-1)).toBe("TEST PASS");
    // A few of the checks by name, so a renamed or dropped check is noticed.
    for (const what of [
      'emailContains("ac.uk").count()',
      "a name with quotes and SQL round-trips (it was bound, not spliced)",
      "i64 minimum round-trips",
      "i64 maximum round-trips",
      "open adds the missing columns: ",
      "a column the class has no field for is refused",
      "a column of another type is refused",
    ])
      expect(lines.some((l) => l.startsWith("ok ") && l.endsWith(" " + what))).toBe(true);
  });

  test("the debug build passes too", () => {
    const r = runWasm({ wasm: wasmPath("ormtest", "debug") });
    expect(r.console.trimEnd().split("\n").at(-1)).toBe("TEST PASS");
  });

  test("saving a NaN ends the unikernel naming the field", () => {
    const r = runWasm({ wasm: wasmPath("ormtest"), cmdline: "nan" });
    expect(r.outcome).toBe("crash");
    expect(r.console).toBe(
      "saving a NaN\npanic: SampleStore.save: Sample.r64 is NaN, which SQLite would store as NULL; refusing to write it\n",
    );
  });

  test("using a store whose open was refused ends the unikernel with the reason", () => {
    const r = runWasm({ wasm: wasmPath("ormtest"), cmdline: "refused" });
    expect(r.outcome).toBe("crash");
    const why =
      'ContactStore: table "Contact" has a column "fax" (TEXT) that class Contact has no field for; refusing to open: migrate the data by hand or restore the field';
    expect(r.console).toBe(`open: ${why}\npanic: ContactStore.count: the store did not open: ${why}\n`);
  });

  test("using a closed store ends the unikernel", () => {
    const r = runWasm({ wasm: wasmPath("ormtest"), cmdline: "closed" });
    expect(r.outcome).toBe("crash");
    expect(r.console).toBe("panic: ContactStore.query: the store is closed\n");
  });

  test("an SQL error in a data operation ends the unikernel with SQLite's message (db.fail)", () => {
    const r = runWasm({ wasm: wasmPath("ormtest"), cmdline: "duplicate" });
    expect(r.outcome).toBe("crash");
    expect(r.console).toBe(
      'panic: sqlite: :memory:: ContactStore.save: INSERT INTO "Contact" ("id", "name", "email", "age", "score", "vip", "phone") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7): UNIQUE constraint failed: Contact.id\n',
    );
  });
});

describe("ormtest on a virtual disk, boot after boot", () => {
  test("a table an earlier boot made with fewer columns is migrated on open, and what is saved persists", () => {
    const disk = new Disk({ sectors: 16384 }); // 8 MiB
    const boot = (cmdline: string) => runWasm({ wasm: wasmPath("ormtest"), cmdline, disks: [disk] });
    const old = boot("disk-old");
    expect([old.outcome, old.console]).toEqual(["poweroff", "old table made\n"]);
    const rows = "1 Old <> 0 0.0 - null\n2 Anil <anil@cam.ac.uk> 40 0.5 vip +44\n1 at ac.uk\n";
    const migrated = boot("disk-new");
    expect([migrated.outcome, migrated.console]).toEqual(["poweroff", "saved 2\n" + rows]);
    const again = boot("disk-read");
    expect([again.outcome, again.console]).toEqual(["poweroff", rows]);
  });
});

/** asc colours its diagnostics when it thinks a terminal or CI is watching (CI=true): compare plain text. */
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Compiles build/orm-cases/<name>.ts (with asconfig.json, so with the transform); stderr and success. */
async function compileCase(name: string, source: string, env: NodeJS.ProcessEnv = {}): Promise<{ ok: boolean; stderr: string }> {
  const file = join(CASES, name + ".ts");
  writeFileSync(file, source);
  try {
    const r = await run(
      ASC,
      [`build/orm-cases/${name}.ts`, "--config", "asconfig.json", "--target", "release", "--outFile", `build/orm-cases/${name}.wasm`],
      { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 16 << 20 },
    );
    return { ok: true, stderr: plain(r.stderr) };
  } catch (e: any) {
    return { ok: false, stderr: plain(String(e.stderr ?? e.message)) };
  }
}

const HEAD = 'import { sqlite } from "../../assembly/runtime";\n';

/** A source whose line 3 starts the @orm class. */
const bad = (body: string) => HEAD + "@orm\nclass Bad {\n" + body + "}\n";

describe("the transform's compile errors", () => {
  const cases: Record<string, { src: string; errors: string[] }> = {
    map: {
      src: bad("  id: i64 = 0;\n  tags: Map<string, i32> = new Map();\n"),
      errors: [
        "ERROR AS102: User-defined: @orm class Bad: field tags has type Map<string, i32>, which cannot be stored; " + SUPPORTED,
        "in build/orm-cases/map.ts(5,9)",
      ],
    },
    array: {
      src: bad("  id: i64 = 0;\n  names: string[] = [];\n"),
      errors: ["ERROR AS102: User-defined: @orm class Bad: field names has type Array<string>, which cannot be stored; " + SUPPORTED],
    },
    classfield: {
      src: HEAD + "class Other {}\n@orm\nclass Bad {\n  id: i64 = 0;\n  other: Other = new Other();\n}\n",
      errors: ["ERROR AS102: User-defined: @orm class Bad: field other has type Other, which cannot be stored; " + SUPPORTED],
    },
    nullableint: {
      src: bad("  id: i64 = 0;\n  n: i32 | null = null;\n"),
      errors: ["ERROR AS102: User-defined: @orm class Bad: field n has type i32 | null, which cannot be stored; " + SUPPORTED],
    },
    noid: {
      src: bad('  name: string = "";\n'),
      errors: [
        "ERROR AS102: User-defined: @orm class Bad: needs a primary key field `id: i64 = 0` (set by save())",
        "in build/orm-cases/noid.ts(3,7)",
      ],
    },
    idtype: {
      src: bad("  id: i32 = 0;\n"),
      errors: ["ERROR AS102: User-defined: @orm class Bad: field id must have type i64 (it is the INTEGER PRIMARY KEY), not i32"],
    },
    u64: {
      src: bad("  id: i64 = 0;\n  big: u64 = 0;\n  size: usize = 0;\n"),
      errors: [
        "ERROR AS102: User-defined: @orm class Bad: field big has type u64, which SQLite's signed 64-bit INTEGER cannot hold in full (use i64); " +
          SUPPORTED,
        "ERROR AS102: User-defined: @orm class Bad: field size has type usize, which SQLite's signed 64-bit INTEGER cannot hold in full (use i64); " +
          SUPPORTED,
      ],
    },
    ctor: {
      src: bad("  id: i64 = 0;\n  constructor(public name: string) {}\n"),
      errors: [
        "ERROR AS102: User-defined: @orm class Bad: the constructor must be callable with no arguments (the store creates instances with `new Bad()`): parameter name has no default",
      ],
    },
    private: {
      src: bad('  id: i64 = 0;\n  private secret: string = "";\n'),
      errors: ["ERROR AS102: User-defined: @orm class Bad: field secret is private; stored fields must be public"],
    },
    derived: {
      src: HEAD + 'class Base { id: i64 = 0; }\n@orm\nclass Bad extends Base {\n  name: string = "";\n}\n',
      errors: [
        "ERROR AS102: User-defined: @orm class Bad: a derived class cannot be stored (its base class's fields are not seen); declare every field in the class",
      ],
    },
    namespace: {
      src: HEAD + "namespace models {\n  @orm\n  class Bad {\n    id: i64 = 0;\n  }\n}\n",
      errors: [
        "ERROR AS102: User-defined: @orm class Bad: must be declared at the top level of its file (not in a namespace or as export default)",
        "in build/orm-cases/namespace.ts(3,3)",
      ],
    },
    case: {
      src: bad('  id: i64 = 0;\n  name: string = "";\n  Name: string = "";\n'),
      errors: ["ERROR AS102: User-defined: @orm class Bad: fields name and Name differ only in case; SQLite column names ignore case"],
    },
  };
  const results: Record<string, { ok: boolean; stderr: string }> = {};

  beforeAll(async () => {
    rmSync(CASES, { recursive: true, force: true });
    mkdirSync(CASES, { recursive: true });
    const names = Object.keys(cases);
    // Two compilers at a time (asc is single-threaded).
    let next = 0;
    const worker = async () => {
      while (next < names.length) {
        const n = names[next++];
        results[n] = await compileCase(n, cases[n].src);
      }
    };
    await Promise.all([worker(), worker()]);
  }, 300_000);

  for (const [name, c] of Object.entries(cases))
    test(`${name}: fails with ${c.errors.length === 1 ? "its error" : "its errors"}`, () => {
      const r = results[name];
      expect(r.ok).toBe(false);
      for (const e of c.errors) expect(r.stderr).toContain(e);
      // Only the transform's errors: nothing from compiling broken generated code.
      const errorLines = r.stderr.split("\n").filter((l) => l.startsWith("ERROR"));
      expect(errorLines.length).toBe(c.errors.filter((e) => e.startsWith("ERROR")).length);
      expect(errorLines.every((l) => l.startsWith("ERROR AS102: User-defined: @orm class Bad: "))).toBe(true);
    });
});

describe("the generated code", () => {
  let generated = "";
  const dump = join(CASES, "dump");

  beforeAll(async () => {
    mkdirSync(CASES, { recursive: true });
    rmSync(dump, { recursive: true, force: true });
    const src =
      HEAD +
      '@orm\nclass Pet {\n  id: i64 = 0;\n  name: string = "";\n  legs: u8 = 4;\n  weight: f32 = 0;\n  tame: bool = true;\n  chip: string | null = null;\n}\n' +
      'const pets = PetStore.open(sqlite.openMemory());\nconst p = new Pet();\npets.save(p);\npets.query().nameContains("x").legsBetween(2, 4).tameIs(true).chipIsNull().orderByWeight(true).limit(3).offset(1).all();\n';
    const r = await compileCase("good", src, { MORGANA_ORM_DUMP: dump });
    expect(r.stderr).toBe("");
    expect(r.ok).toBe(true);
    generated = readFileSync(join(dump, "build_orm-cases_good.ts"), "utf8");
  }, 120_000);

  test("MORGANA_ORM_DUMP writes the generated source", () => {
    expect(generated).toContain("\nclass PetStore {");
    expect(generated).toContain("\nclass PetQuery {");
    expect(generated).toContain('import * as __orm_sqlite from "../../assembly/runtime/sqlite/index";');
  });

  test("the fixed statements: quoted names, ? parameters, no values in the SQL", () => {
    const sql = [...generated.matchAll(/db\.prepare\(("(?:[^"\\]|\\.)*")\)/g)].map((m) => JSON.parse(m[1]));
    expect(sql).toEqual([
      'PRAGMA table_info("Pet")',
      'INSERT INTO "Pet" ("id", "name", "legs", "weight", "tame", "chip") VALUES (?1, ?2, ?3, ?4, ?5, ?6)',
      'SELECT "id", "name", "legs", "weight", "tame", "chip" FROM "Pet" WHERE "id" = ?1',
      'UPDATE "Pet" SET "name" = ?2, "legs" = ?3, "weight" = ?4, "tame" = ?5, "chip" = ?6 WHERE "id" = ?1',
      'DELETE FROM "Pet" WHERE "id" = ?1',
      'SELECT count(*) FROM "Pet"',
    ]);
    expect(generated).toContain(
      JSON.stringify(
        'CREATE TABLE "Pet" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, "legs" INTEGER NOT NULL, "weight" REAL NOT NULL, "tame" INTEGER NOT NULL CHECK("tame" IN (0,1)), "chip" TEXT)',
      ),
    );
    // Migration: new columns get the zero value (NULL for optional), never the initialiser.
    expect(generated).toContain(JSON.stringify('ALTER TABLE "Pet" ADD COLUMN "legs" INTEGER NOT NULL DEFAULT 0'));
    expect(generated).toContain(JSON.stringify('ALTER TABLE "Pet" ADD COLUMN "name" TEXT NOT NULL DEFAULT \'\''));
    expect(generated).toContain(JSON.stringify('ALTER TABLE "Pet" ADD COLUMN "weight" REAL NOT NULL DEFAULT 0.0'));
    expect(generated).toContain(JSON.stringify('ALTER TABLE "Pet" ADD COLUMN "chip" TEXT'));
  });

  test("every query condition is SQL with ? placeholders; values go through bind calls only", () => {
    const conds = [...generated.matchAll(/this\.where\(("(?:[^"\\]|\\.)*")\)/g)].map((m) => JSON.parse(m[1]));
    // Exactly these, in field order: every value is a ?, no literal of any kind.
    const num = (c: string) => [`${c} = ?`, `${c} <> ?`, `${c} < ?`, `${c} <= ?`, `${c} > ?`, `${c} >= ?`, `${c} BETWEEN ? AND ?`];
    const text = (c: string) => [`${c} = ?`, `${c} <> ?`, `instr(${c}, ?) > 0`, `substr(${c}, 1, length(?)) = ?`];
    expect(conds).toEqual([
      ...num('"id"'),
      ...text('"name"'),
      ...num('"legs"'),
      ...num('"weight"'),
      '"tame" = ?',
      '"chip" IS NULL',
      '"chip" IS NOT NULL',
      ...text('"chip"'),
    ]);
    // The only strings concatenated into SQL at run time are these fixed fragments.
    expect(generated).not.toMatch(/\+ v\b|v \+|\+ lo\b|\+ hi\b/);
    expect(generated).toContain('" LIMIT ? OFFSET ?"');
  });

  test("fixed statements are prepared once, in open; queries prepare per call and finalize", () => {
    expect((generated.match(/db\.prepare\(/g) ?? []).length).toBe(7); // 6 in open, 1 in PetQuery.run
    const query = generated.slice(generated.indexOf("class PetQuery"));
    expect((query.match(/db\.prepare\(/g) ?? []).length).toBe(1);
    expect(query).toContain("s.finalize();");
  });
});

describe("an @orm class in a module the app imports", () => {
  test("its store and query classes are exported with it, and the runtime import resolves from there", async () => {
    mkdirSync(join(CASES, "lib"), { recursive: true });
    writeFileSync(join(CASES, "lib", "model.ts"), '@orm\nexport class Thing {\n  id: i64 = 0;\n  label: string = "";\n}\n');
    const r = await compileCase(
      "importer",
      HEAD +
        'import { Thing, ThingStore, ThingQuery } from "./lib/model";\n' +
        'const st = ThingStore.open(sqlite.openMemory());\nconst t = new Thing();\nst.save(t);\nconst q: ThingQuery = st.query().labelEq("x");\nq.count();\n',
    );
    expect(r.stderr.split("\n").filter((l) => l.startsWith("ERROR"))).toEqual([]);
    expect(r.ok).toBe(true);
  }, 120_000);
});

describe("apps without @orm", () => {
  test("hello compiles to the same bytes with and without the transform", async () => {
    mkdirSync(CASES, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(ROOT, "asconfig.json"), "utf8"));
    // The ORM transform goes; the out-of-memory one (asconfig.oom.mjs) stays in both builds.
    expect(cfg.options.transform).toEqual(["./asconfig.transforms.mjs", "./asconfig.oom.mjs"]);
    cfg.options.transform = [join(ROOT, "asconfig.oom.mjs")]; // the config lies elsewhere: an absolute path
    const plain = join(CASES, "asconfig.plain.json");
    writeFileSync(plain, JSON.stringify(cfg));
    const build = async (config: string, out: string) =>
      run(ASC, ["assembly/apps/hello/main.ts", "--config", config, "--target", "release", "--outFile", out], { cwd: ROOT });
    await Promise.all([
      build("asconfig.json", "build/orm-cases/hello.with.wasm"),
      build("build/orm-cases/asconfig.plain.json", "build/orm-cases/hello.without.wasm"),
    ]);
    const a = readFileSync(join(CASES, "hello.with.wasm"));
    const b = readFileSync(join(CASES, "hello.without.wasm"));
    expect(a.length).toBeGreaterThan(1000);
    expect(a.equals(b)).toBe(true);
    expect(existsSync(wasmPath("hello"))).toBe(true);
  }, 120_000);
});
