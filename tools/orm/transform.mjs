// @orm: typed records persisted in SQLite through generated code (the Mirage paper's
// `with orm`, §3.3), as an AssemblyScript compiler transform (asc 0.28, afterParse).
//
//   import { sqlite } from "../../runtime";
//
//   @orm
//   class Contact {
//     id: i64 = 0;                  // required: the primary key, 0 = not saved yet
//     name: string = "";
//     age: i32 = 0;
//     score: f64 = 0;
//     vip: bool = false;
//     phone: string | null = null;  // NULL in the database
//   }
//
//   const contacts = ContactStore.open(sqlite.openMemory());
//   if (!contacts.ok) panic(contacts.error);      // e.g. a schema it refuses to migrate
//   const c = new Contact(); c.name = "Anil";
//   contacts.save(c);                              // INSERT; sets c.id
//   contacts.get(c.id);                            // Contact | null
//   c.age = 40; contacts.update(c);                // false: no row with that id
//   contacts.query().ageBetween(18, 65).vipIs(true).orderByName().limit(10).all();
//   contacts.query().phoneIsNull().first();        // Contact | null
//   contacts.query().nameEq("Anil").delete();      // rows deleted
//
// For each class decorated with @orm the transform appends, in the same file (parsed
// under the same source path), a class <Name>Store (open, save, get, update, delete,
// count, query, close) and a class <Name>Query (per-field conditions, ordering, limit,
// offset; all, first, count, delete). tools/orm/README.md is the full reference: type
// mapping, queries, migrations, errors, limits.
//
// Columns: string TEXT NOT NULL; string | null TEXT; integers INTEGER NOT NULL; f32/f64
// REAL NOT NULL; bool INTEGER NOT NULL CHECK(f IN (0,1)); id INTEGER PRIMARY KEY.
// Migration on open (PRAGMA table_info): no table → CREATE TABLE; fields missing on disk
// → ALTER TABLE ADD COLUMN with DEFAULT the zero value ('' / 0 / 0.0, NULL if optional),
// in one transaction; a column the class lacks or whose type differs → refused.
// Errors: open() never panics (store.ok / store.error); data operations treat an SQL
// error as fatal (db.fail(): a panic naming the operation, the SQL and SQLite's
// message), as is using a store that failed to open or was closed, and saving a NaN.
//
// Rules checked at compile time (an error names the class, the field and what is
// supported; asc prints it as "ERROR AS102: User-defined: @orm ...", with the line):
//   - every instance field has one of the supported types: string, string | null,
//     i8 i16 i32 i64 u8 u16 u32 isize, f32 f64, bool;
//   - the class is declared at the top level of its file (not in a namespace);
//   - `id: i64` exists; the class is not generic, abstract or derived; no private,
//     protected or readonly fields; a constructor callable with no arguments;
//   - no two fields whose names differ only in case (SQLite names ignore case).
// Static fields, getters and methods are not persisted.
//
// SQL: the table is named after the class, columns after the fields, identifiers in
// double quotes. Every value is a bound parameter; the SQL text holds only names.
//
// MORGANA_ORM_DUMP=<dir>: write each file's generated code to <dir>/<path with / as _>.ts
// (for tests and for reading what the transform made).
//
// The transform does nothing (and costs nothing) for sources without an @orm class.
import { NodeKind, CommonFlags, DiagnosticCode } from "assemblyscript";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { mkdirSync, writeFileSync } from "node:fs";

/** @typedef {import("assemblyscript").ClassDeclaration} ClassDeclaration */
/** @typedef {import("assemblyscript").ExportDefaultStatement} ExportDefaultStatement */
/** @typedef {import("assemblyscript").FieldDeclaration} FieldDeclaration */
/** @typedef {import("assemblyscript").IdentifierExpression} IdentifierExpression */
/** @typedef {import("assemblyscript").MethodDeclaration} MethodDeclaration */
/** @typedef {import("assemblyscript").NamedTypeNode} NamedTypeNode */
/** @typedef {import("assemblyscript").NamespaceDeclaration} NamespaceDeclaration */
/** @typedef {import("assemblyscript").Parser} Parser */
/** @typedef {import("assemblyscript").Range} Range */
/** @typedef {import("assemblyscript").Statement} Statement */
/** @typedef {import("assemblyscript").TypeNode} TypeNode */
/**
 * How a column is stored and handled ("id" is set on the primary key once the model checks out).
 * @typedef {{ kind: "text" | "optText" | "int" | "real" | "bool" | "id", sql: string, notNull: boolean, zero: string }} ColumnInfo
 */
/** @typedef {ColumnInfo & { name: string, asType: string | null, range: Range }} Field a stored field of an @orm class */
/** @typedef {{ name: string, exported: boolean, fields: Field[] }} Model an @orm class that checked out */
/** @typedef {(range: Range, msg: string) => void} Report reports a compile error at `range` */

const HERE = dirname(fileURLToPath(import.meta.url));
/** The runtime modules the generated code imports (paths without .ts). */
const RUNTIME_SQLITE = resolve(HERE, "..", "..", "assembly", "runtime", "sqlite", "index");
const RUNTIME_SYSTEM = resolve(HERE, "..", "..", "assembly", "runtime", "system");

/** @type {Record<string, ColumnInfo>} The supported field types: AssemblyScript type → how it is stored and handled. */
const TYPES = {
  string: { kind: "text", sql: "TEXT", notNull: true, zero: "''" },
  i8: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  i16: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  i32: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  i64: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  u8: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  u16: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  u32: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  isize: { kind: "int", sql: "INTEGER", notNull: true, zero: "0" },
  f32: { kind: "real", sql: "REAL", notNull: true, zero: "0.0" },
  f64: { kind: "real", sql: "REAL", notNull: true, zero: "0.0" },
  bool: { kind: "bool", sql: "INTEGER", notNull: true, zero: "0" },
};
/** @type {ColumnInfo} */
const OPTIONAL_TEXT = { kind: "optText", sql: "TEXT", notNull: false, zero: "NULL" };
const SUPPORTED = "supported: string, string | null, i8, i16, i32, i64, u8, u16, u32, isize, f32, f64, bool";

/** A SQL identifier in double quotes. */
const q = (/** @type {string} */ name) => '"' + name.replace(/"/g, '""') + '"';
/** An AssemblyScript string literal. */
const lit = (/** @type {string} */ s) => JSON.stringify(s);
const cap = (/** @type {string} */ s) => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * A type annotation as the user wrote it, for error messages.
 * @param {TypeNode | null} node
 * @returns {string}
 */
function typeText(node) {
  if (!node) return "(no type annotation)";
  if (node.kind === NodeKind.NamedType) {
    const named = /** @type {NamedTypeNode} */ (node);
    /** @type {string[]} */
    let parts = [];
    /** @type {import("assemblyscript").TypeName | null} */
    let n = named.name;
    for (; n; n = n.next) parts.push(n.identifier.text);
    let s = parts.join(".");
    if (named.typeArguments && named.typeArguments.length) s += "<" + named.typeArguments.map(typeText).join(", ") + ">";
    return node.isNullable ? s + " | null" : s;
  }
  if (node.kind === NodeKind.FunctionType) return "a function type";
  return "an unsupported type";
}

/**
 * Checks one @orm class; returns its model or null after reporting errors.
 * @param {ClassDeclaration} cls
 * @param {Report} report
 * @returns {Model | null}
 */
function model(cls, report) {
  const name = cls.name.text;
  let bad = false;
  /** @type {Report} */
  const err = (range, msg) => {
    report(range, "@orm class " + name + ": " + msg);
    bad = true;
  };
  if (cls.typeParameters && cls.typeParameters.length) err(cls.name.range, "a generic class cannot be stored");
  if (cls.extendsType)
    err(cls.extendsType.range, "a derived class cannot be stored (its base class's fields are not seen); declare every field in the class");
  if (cls.flags & CommonFlags.Abstract) err(cls.name.range, "an abstract class cannot be stored");
  /** @type {Field[]} */
  const fields = [];
  for (const m of cls.members) {
    if (m.kind === NodeKind.MethodDeclaration && m.name.text === "constructor") {
      for (const p of /** @type {MethodDeclaration} */ (m).signature.parameters) {
        if (!p.initializer && p.parameterKind !== 2 /* rest */ && p.parameterKind !== 1 /* optional */) {
          err(
            p.name.range,
            "the constructor must be callable with no arguments (the store creates instances with `new " +
              name +
              "()`): parameter " +
              p.name.text +
              " has no default",
          );
          break;
        }
      }
      continue;
    }
    if (m.kind !== NodeKind.FieldDeclaration) continue;
    if (m.flags & CommonFlags.Static) continue;
    const f = m.name.text;
    if (m.flags & (CommonFlags.Private | CommonFlags.Protected)) {
      err(
        m.name.range,
        "field " + f + " is " + (m.flags & CommonFlags.Private ? "private" : "protected") + "; stored fields must be public",
      );
      continue;
    }
    if (m.flags & CommonFlags.Readonly) {
      err(m.name.range, "field " + f + " is readonly; stored fields are assigned when rows are read");
      continue;
    }
    const t = /** @type {FieldDeclaration} */ (m).type;
    /** @type {ColumnInfo | null} */
    let info = null;
    /** @type {string | null} */
    let asType = null;
    const named = t && t.kind === NodeKind.NamedType ? /** @type {NamedTypeNode} */ (t) : null;
    if (named && !named.name.next && !(named.typeArguments && named.typeArguments.length)) {
      let n = named.name.identifier.text;
      if (n === "boolean") n = "bool";
      if (n === "String") n = "string";
      if (named.isNullable) {
        if (n === "string") info = OPTIONAL_TEXT;
      } else if (Object.prototype.hasOwnProperty.call(TYPES, n)) info = TYPES[n];
      asType = n;
      if (!info && (n === "u64" || n === "usize")) {
        err(
          named.range,
          "field " +
            f +
            " has type " +
            typeText(named) +
            ", which SQLite's signed 64-bit INTEGER cannot hold in full (use i64); " +
            SUPPORTED,
        );
        continue;
      }
    }
    if (!info) {
      err(t ? t.range : m.name.range, "field " + f + " has type " + typeText(t) + ", which cannot be stored; " + SUPPORTED);
      continue;
    }
    fields.push({ name: f, asType, ...info, range: m.name.range });
  }
  /** @type {Map<string, string>} field names in lower case → as declared */
  const lower = new Map();
  for (const fd of fields) {
    const k = fd.name.toLowerCase();
    if (lower.has(k)) err(fd.range, "fields " + lower.get(k) + " and " + fd.name + " differ only in case; SQLite column names ignore case");
    else lower.set(k, fd.name);
  }
  const id = fields.find((fd) => fd.name === "id");
  if (cls.extendsType) {
    // reported above; whether id is in the base class is not known here
  } else if (!id && !cls.members.some((m) => m.kind === NodeKind.FieldDeclaration && m.name.text === "id"))
    err(cls.name.range, "needs a primary key field `id: i64 = 0` (set by save())");
  else if (id && id.asType !== "i64") err(id.range, "field id must have type i64 (it is the INTEGER PRIMARY KEY), not " + id.asType);
  if (bad) return null;
  /** @type {Field} */ (id).kind = "id";
  return { name, exported: (cls.flags & CommonFlags.Export) !== 0, fields };
}

/**
 * The column's declaration in CREATE TABLE, and how PRAGMA table_info shows it.
 * @param {Field} f
 */
function columnDecl(f) {
  if (f.kind === "id") return "INTEGER PRIMARY KEY";
  let d = f.sql + (f.notNull ? " NOT NULL" : "");
  if (f.kind === "bool") d += " CHECK(" + q(f.name) + " IN (0,1))";
  return d;
}
/** @param {Field} f */
function columnShape(f) {
  return f.kind === "id" ? "INTEGER PRIMARY KEY" : f.sql + (f.notNull ? " NOT NULL" : "");
}

/**
 * The generated AssemblyScript for one model.
 * @param {Model} m
 */
function generate(m) {
  const N = m.name,
    S = N + "Store",
    Q = N + "Query",
    T = q(N);
  const ex = m.exported ? "export " : "";
  const fs = m.fields;
  const cols = fs.map((f) => q(f.name)).join(", ");
  const idIdx = fs.findIndex((f) => f.kind === "id") + 1;
  const selectCols = "SELECT " + cols + " FROM " + T;
  const create = "CREATE TABLE " + T + " (" + fs.map((f) => q(f.name) + " " + columnDecl(f)).join(", ") + ")";
  const insert = "INSERT INTO " + T + " (" + cols + ") VALUES (" + fs.map((_, i) => "?" + (i + 1)).join(", ") + ")";
  const update =
    "UPDATE " +
    T +
    " SET " +
    fs
      .filter((f) => f.kind !== "id")
      .map((f) => q(f.name) + " = ?" + (fs.indexOf(f) + 1))
      .join(", ") +
    " WHERE " +
    q("id") +
    " = ?" +
    idIdx;
  const get = selectCols + " WHERE " + q("id") + " = ?1";
  const del = "DELETE FROM " + T + " WHERE " + q("id") + " = ?1";
  const count = "SELECT count(*) FROM " + T;

  const bindRow = fs
    .map((f, i) => {
      const n = i + 1,
        v = "o." + f.name;
      switch (f.kind) {
        case "id":
          return `    if (${v} == 0) s.bindNull(${n}); else s.bindInt(${n}, ${v});`;
        case "text":
          return `    s.bindText(${n}, ${v});`;
        case "optText":
          return `    s.bindTextOrNull(${n}, ${v});`;
        case "int":
          return `    s.bindInt(${n}, <i64>${v});`;
        case "bool":
          return `    s.bindBool(${n}, ${v});`;
        case "real":
          return (
            `    if (isNaN(${v})) __orm_sys.panic(${lit(S + ".")} + what + ${lit(": " + N + "." + f.name + " is NaN, which SQLite would store as NULL; refusing to write it")});\n` +
            `    s.bindFloat(${n}, <f64>${v});`
          );
      }
    })
    .join("\n");
  const readRow = fs
    .map((f, i) => {
      const v = "o." + f.name;
      switch (f.kind) {
        case "id":
          return `    ${v} = s.columnInt(${i});`;
        case "text":
          return `    ${v} = s.columnText(${i});`;
        case "optText":
          return `    ${v} = s.columnTextOrNull(${i});`;
        case "int":
          return `    ${v} = <${f.asType}>s.columnInt(${i});`;
        case "bool":
          return `    ${v} = s.columnBool(${i});`;
        case "real":
          return `    ${v} = <${f.asType}>s.columnFloat(${i});`;
      }
    })
    .join("\n");

  // Migration data: one entry per field.
  const fNames = "[" + fs.map((f) => lit(f.name.toLowerCase())).join(", ") + "]";
  const fShapes = "[" + fs.map((f) => lit(columnShape(f))).join(", ") + "]";
  const fDescs = "[" + fs.map((f) => lit(f.name + ": " + (f.kind === "optText" ? "string | null" : f.asType))).join(", ") + "]";
  const fAdds =
    "[" +
    fs
      .map((f) =>
        lit(
          f.kind === "id"
            ? ""
            : "ALTER TABLE " + T + " ADD COLUMN " + q(f.name) + " " + columnDecl(f) + (f.notNull ? " DEFAULT " + f.zero : ""),
        ),
      )
      .join(", ") +
    "]";

  // Query conditions.
  /** @type {string[]} */
  const conds = [];
  for (const f of fs) {
    const c = q(f.name),
      n = f.name;
    const num = f.kind === "id" || f.kind === "int" || f.kind === "real";
    if (num) {
      const ty = f.asType,
        bind = f.kind === "real" ? "pFloat(<f64>" : "pInt(<i64>";
      for (const [op, sym] of [
        ["Eq", "="],
        ["Ne", "<>"],
        ["Lt", "<"],
        ["Le", "<="],
        ["Gt", ">"],
        ["Ge", ">="],
      ])
        conds.push(`  ${n}${op}(v: ${ty}): ${Q} {\n    return this.where(${lit(c + " " + sym + " ?")}).${bind}v);\n  }`);
      conds.push(
        `  ${n}Between(lo: ${ty}, hi: ${ty}): ${Q} {\n    return this.where(${lit(c + " BETWEEN ? AND ?")}).${bind}lo).${bind}hi);\n  }`,
      );
    } else if (f.kind === "bool") {
      conds.push(`  ${n}Is(v: bool): ${Q} {\n    return this.where(${lit(c + " = ?")}).pInt(v ? 1 : 0);\n  }`);
    } else {
      if (f.kind === "optText") {
        conds.push(`  ${n}IsNull(): ${Q} {\n    return this.where(${lit(c + " IS NULL")});\n  }`);
        conds.push(`  ${n}IsNotNull(): ${Q} {\n    return this.where(${lit(c + " IS NOT NULL")});\n  }`);
      }
      conds.push(`  ${n}Eq(v: string): ${Q} {\n    return this.where(${lit(c + " = ?")}).pText(v);\n  }`);
      conds.push(`  ${n}Ne(v: string): ${Q} {\n    return this.where(${lit(c + " <> ?")}).pText(v);\n  }`);
      conds.push(`  ${n}Contains(v: string): ${Q} {\n    return this.where(${lit("instr(" + c + ", ?) > 0")}).pText(v);\n  }`);
      conds.push(
        `  ${n}StartsWith(v: string): ${Q} {\n    return this.where(${lit("substr(" + c + ", 1, length(?)) = ?")}).pText(v).pText(v);\n  }`,
      );
    }
    conds.push(
      `  orderBy${cap(n)}(desc: bool = false): ${Q} {\n    this.order.push(desc ? ${lit(c + " DESC")} : ${lit(c + " ASC")});\n    return this;\n  }`,
    );
  }

  return `
// ---- generated by tools/orm/transform.mjs for @orm class ${N} ----
/** The table ${T}: typed access to ${N} rows (see tools/orm/README.md). */
${ex}class ${S} {
  /** Why open() failed ("" when the store is usable). */
  error: string = "";
  sInsert: __orm_sqlite.Statement | null = null;
  sGet: __orm_sqlite.Statement | null = null;
  sUpdate: __orm_sqlite.Statement | null = null;
  sDelete: __orm_sqlite.Statement | null = null;
  sCount: __orm_sqlite.Statement | null = null;

  constructor(public db: __orm_sqlite.Database) {}

  /** True when open() succeeded. */
  get ok(): bool {
    return this.error.length == 0;
  }

  /** Creates the table, or checks it and adds the class's new columns; check ok / error. */
  static open(db: __orm_sqlite.Database): ${S} {
    const st = new ${S}(db);
    if (db.handle == 0) {
      st.error = ${lit(S + ": the database is not open")} + (db.error.length > 0 ? " (" + db.error + ")" : "");
      return st;
    }
    st.error = st.migrate();
    if (st.error.length == 0) st.error = st.prepareAll();
    return st;
  }

  private migrate(): string {
    const db = this.db;
    const info = db.prepare(${lit("PRAGMA table_info(" + T + ")")});
    if (info == null) return ${lit(S + ": ")} + db.error;
    const names = new Array<string>();
    const shapes = new Array<string>();
    while (info.step()) {
      names.push(info.columnText(1));
      let shape = info.columnText(2).toUpperCase();
      if (info.columnInt(5) != 0) shape += " PRIMARY KEY";
      else if (info.columnInt(3) != 0) shape += " NOT NULL";
      shapes.push(shape);
    }
    const failed = info.failed;
    info.finalize();
    if (failed) return ${lit(S + ": reading the columns of table " + T + ": ")} + db.error;
    if (names.length == 0) {
      if (!db.exec(${lit(create)})) return ${lit(S + ": creating table " + T + ": ")} + db.error;
      return "";
    }
    const fNames: string[] = ${fNames};
    const fShapes: string[] = ${fShapes};
    const fDescs: string[] = ${fDescs};
    const fAdds: string[] = ${fAdds};
    const seen = new Array<bool>(fNames.length);
    for (let i = 0; i < names.length; i++) {
      const j = fNames.indexOf(names[i].toLowerCase());
      if (j < 0)
        return ${lit(S + ": table " + T + ' has a column "')} + names[i] + "\\" (" + shapes[i] + ${lit(") that class " + N + " has no field for; refusing to open: migrate the data by hand or restore the field")};
      seen[j] = true;
      if (shapes[i] != fShapes[j])
        return ${lit(S + ": table " + T + ' column "')} + names[i] + "\\" is " + shapes[i] + " on disk but " + fShapes[j] + ${lit(" in class " + N + " (")} + fDescs[j] + ${lit("); refusing to open: migrate the data by hand or restore the field")};
    }
    const adds = new Array<string>();
    for (let j = 0; j < fNames.length; j++) if (!seen[j]) adds.push(fAdds[j]);
    if (adds.length == 0) return "";
    if (fAdds.indexOf("") >= 0 && !seen[fAdds.indexOf("")])
      return ${lit(S + ": table " + T + ' has no "id" column; refusing to open: migrate the data by hand or restore the field')};
    const own = db.autocommit;
    if (own && !db.begin()) return ${lit(S + ": ")} + db.error;
    for (let k = 0; k < adds.length; k++) {
      if (!db.exec(adds[k])) {
        const e = db.error;
        if (own) db.rollback();
        return ${lit(S + ": adding a column: ")} + e;
      }
    }
    if (own && !db.commit()) return ${lit(S + ": ")} + db.error;
    return "";
  }

  private prepareAll(): string {
    const db = this.db;
    this.sInsert = db.prepare(${lit(insert)});
    if (this.sInsert == null) return ${lit(S + ": ")} + db.error;
    this.sGet = db.prepare(${lit(get)});
    if (this.sGet == null) return ${lit(S + ": ")} + db.error;
    this.sUpdate = db.prepare(${lit(update)});
    if (this.sUpdate == null) return ${lit(S + ": ")} + db.error;
    this.sDelete = db.prepare(${lit(del)});
    if (this.sDelete == null) return ${lit(S + ": ")} + db.error;
    this.sCount = db.prepare(${lit(count)});
    if (this.sCount == null) return ${lit(S + ": ")} + db.error;
    return "";
  }

  /** A panic unless open() succeeded and close() has not run. */
  live(what: string): void {
    if (this.error.length > 0) __orm_sys.panic(${lit(S + ".")} + what + ": the store did not open: " + this.error);
    if (this.sInsert == null) __orm_sys.panic(${lit(S + ".")} + what + ": the store is closed");
  }

  bindRow(s: __orm_sqlite.Statement, o: ${N}, what: string): void {
${bindRow}
  }

  /** A new ${N} from the current row of a statement that selected every column in order. */
  static read(s: __orm_sqlite.Statement): ${N} {
    const o = new ${N}();
${readRow}
    return o;
  }

  /** INSERTs o as a new row and sets o.id (SQLite picks it when o.id is 0); returns o.id. */
  save(o: ${N}): i64 {
    this.live("save");
    const s = this.sInsert!;
    this.bindRow(s, o, "save");
    if (!s.run()) this.db.fail(${lit(S + ".save")});
    o.id = this.db.lastInsertRowid();
    return o.id;
  }

  /** The row with this id, or null. */
  get(id: i64): ${N} | null {
    this.live("get");
    const s = this.sGet!;
    s.bindInt(1, id);
    let r: ${N} | null = null;
    if (s.step()) r = ${S}.read(s);
    const failed = s.failed;
    s.reset();
    if (failed) this.db.fail(${lit(S + ".get")});
    return r;
  }

  /** Writes every field of o to the row o.id; false when there is no such row. */
  update(o: ${N}): bool {
    this.live("update");
    const s = this.sUpdate!;
    this.bindRow(s, o, "update");
    if (!s.run()) this.db.fail(${lit(S + ".update")});
    return this.db.changes() > 0;
  }

  /** Deletes the row with this id; false when there was none. */
  delete(id: i64): bool {
    this.live("delete");
    const s = this.sDelete!;
    s.bindInt(1, id);
    if (!s.run()) this.db.fail(${lit(S + ".delete")});
    return this.db.changes() > 0;
  }

  /** Rows in the table. */
  count(): i64 {
    this.live("count");
    const s = this.sCount!;
    let n: i64 = 0;
    if (s.step()) n = s.columnInt(0);
    const failed = s.failed;
    s.reset();
    if (failed) this.db.fail(${lit(S + ".count")});
    return n;
  }

  /** A query over the table: add conditions (ANDed), order, limit; then all/first/count/delete. */
  query(): ${Q} {
    this.live("query");
    return new ${Q}(this);
  }

  /** Finalizes the store's statements (the database stays open). */
  close(): void {
    if (this.sInsert != null) this.sInsert!.finalize();
    if (this.sGet != null) this.sGet!.finalize();
    if (this.sUpdate != null) this.sUpdate!.finalize();
    if (this.sDelete != null) this.sDelete!.finalize();
    if (this.sCount != null) this.sCount!.finalize();
    this.sInsert = null;
  }
}

/** A query over ${T}, built by ${S}.query(). Conditions are ANDed; values are bound parameters. */
${ex}class ${Q} {
  conds: string[] = [];
  order: string[] = [];
  kinds: u8[] = []; // 0 integer, 1 float, 2 text
  ints: i64[] = [];
  floats: f64[] = [];
  texts: string[] = [];
  lim: i64 = -1;
  off: i64 = 0;
  paged: bool = false;

  constructor(public store: ${S}) {}

  where(cond: string): ${Q} {
    this.conds.push(cond);
    return this;
  }
  pInt(v: i64): ${Q} {
    this.kinds.push(0); this.ints.push(v); this.floats.push(0); this.texts.push("");
    return this;
  }
  pFloat(v: f64): ${Q} {
    this.kinds.push(1); this.ints.push(0); this.floats.push(v); this.texts.push("");
    return this;
  }
  pText(v: string): ${Q} {
    this.kinds.push(2); this.ints.push(0); this.floats.push(0); this.texts.push(v);
    return this;
  }

${conds.join("\n")}

  /** At most n rows (negative: no limit). */
  limit(n: i64): ${Q} {
    this.lim = n;
    this.paged = true;
    return this;
  }
  /** Skip the first n rows. */
  offset(n: i64): ${Q} {
    this.off = n;
    this.paged = true;
    return this;
  }

  /** " WHERE ... ORDER BY ..., id [LIMIT ? OFFSET ?]" */
  tail(ordered: bool, lim: i64): string {
    let s = this.conds.length > 0 ? " WHERE " + this.conds.join(" AND ") : "";
    if (ordered) s += " ORDER BY " + (this.order.length > 0 ? this.order.join(", ") + ", " : "") + ${lit(q("id") + " ASC")};
    if (lim != -1 || this.paged) s += " LIMIT ? OFFSET ?";
    return s;
  }

  run(sql: string, lim: i64, what: string): __orm_sqlite.Statement {
    const db = this.store.db;
    const s = db.prepare(sql);
    if (s == null) {
      db.fail(what);
      return changetype<__orm_sqlite.Statement>(0);
    }
    let i = 0;
    for (; i < this.kinds.length; i++) {
      const k = this.kinds[i];
      if (k == 0) s.bindInt(i + 1, this.ints[i]);
      else if (k == 1) s.bindFloat(i + 1, this.floats[i]);
      else s.bindText(i + 1, this.texts[i]);
    }
    if (lim != -1 || this.paged) {
      s.bindInt(i + 1, lim);
      s.bindInt(i + 2, this.off);
    }
    return s;
  }

  done(s: __orm_sqlite.Statement, what: string): void {
    const failed = s.failed;
    s.finalize();
    if (failed) this.store.db.fail(what);
  }

  /** The matching rows, in order (by id unless ordered otherwise; ties by id). */
  all(): ${N}[] {
    this.store.live("query().all");
    const s = this.run(${lit(selectCols)} + this.tail(true, this.lim), this.lim, ${lit(Q + ".all")});
    const out = new Array<${N}>();
    while (s.step()) out.push(${S}.read(s));
    this.done(s, ${lit(Q + ".all")});
    return out;
  }

  /** The first matching row, or null. */
  first(): ${N} | null {
    this.store.live("query().first");
    const lim: i64 = this.lim >= 0 && this.lim < 1 ? this.lim : 1;
    const s = this.run(${lit(selectCols)} + this.tail(true, lim), lim, ${lit(Q + ".first")});
    let r: ${N} | null = null;
    if (s.step()) r = ${S}.read(s);
    this.done(s, ${lit(Q + ".first")});
    return r;
  }

  /** How many rows match (after offset and limit). */
  count(): i64 {
    this.store.live("query().count");
    const sql = this.paged
      ? ${lit("SELECT count(*) FROM (SELECT 1 FROM " + T)} + this.tail(true, this.lim) + ")"
      : ${lit("SELECT count(*) FROM " + T)} + this.tail(false, -1);
    const s = this.run(sql, this.lim, ${lit(Q + ".count")});
    let n: i64 = 0;
    if (s.step()) n = s.columnInt(0);
    this.done(s, ${lit(Q + ".count")});
    return n;
  }

  /** Deletes the matching rows (after offset and limit); returns how many. */
  delete(): i64 {
    this.store.live("query().delete");
    const sql = this.paged
      ? ${lit("DELETE FROM " + T + " WHERE " + q("id") + " IN (SELECT " + q("id") + " FROM " + T)} + this.tail(true, this.lim) + ")"
      : ${lit("DELETE FROM " + T)} + this.tail(false, -1);
    const s = this.run(sql, this.lim, ${lit(Q + ".delete")});
    while (s.step()) {}
    this.done(s, ${lit(Q + ".delete")});
    return <i64>this.store.db.changes();
  }
}
`;
}

/**
 * The import specifier of `target` (a path without .ts) from the file `fromFile`.
 * @param {string} fromFile
 * @param {string} target
 */
function importPath(fromFile, target) {
  let r = relative(dirname(fromFile), target).split(sep).join("/");
  if (!r.startsWith(".")) r = "./" + r;
  return r;
}

export default class OrmTransform {
  /** @param {Parser} parser */
  afterParse(parser) {
    // asc sets baseDir on the transform's prototype (the Transform base class of "assemblyscript/transform")
    const baseDir = /** @type {{ baseDir?: string }} */ (this).baseDir || process.cwd();
    /** @type {Report} */
    const report = (range, msg) => parser.error(DiagnosticCode.User_defined_0, range, msg);
    /** @param {import("assemblyscript").DecoratorNode} d */
    const isOrm = (d) => d.name.kind === NodeKind.Identifier && /** @type {IdentifierExpression} */ (d.name).text === "orm";
    for (const src of parser.sources.slice()) {
      if (src.isLibrary || src.normalizedPath.startsWith("~lib/")) continue;
      /** @type {Model[]} */
      const models = [];
      for (const stmt of src.statements) {
        const st = /** @type {ClassDeclaration} */ (stmt);
        if (st.kind !== NodeKind.ClassDeclaration || !st.decorators) continue;
        const deco = st.decorators.find(isOrm);
        if (!deco) continue;
        // asc accepts unknown decorators silently; drop ours so no later pass sees it.
        st.decorators = st.decorators.filter((d) => d !== deco);
        if (st.decorators.length === 0) st.decorators = null;
        const m = model(st, report);
        if (m) models.push(m);
      }
      // @orm below the top level (in a namespace, `export default`) is not supported: say so
      // rather than let asc accept the decorator silently.
      /** @type {(stmts: Statement[], top: boolean) => void} */
      const nested = (stmts, top) => {
        for (const st of stmts) {
          const inner =
            st.kind === NodeKind.NamespaceDeclaration
              ? /** @type {NamespaceDeclaration} */ (st).members
              : st.kind === NodeKind.ExportDefault
                ? [/** @type {ExportDefaultStatement} */ (st).declaration]
                : null;
          const cls = /** @type {ClassDeclaration} */ (st);
          if (inner) nested(inner, false);
          else if (!top && st.kind === NodeKind.ClassDeclaration && cls.decorators)
            for (const d of cls.decorators)
              if (isOrm(d))
                report(
                  d.range,
                  "@orm class " +
                    cls.name.text +
                    ": must be declared at the top level of its file (not in a namespace or as export default)",
                );
        }
      };
      nested(src.statements, true);
      if (models.length === 0) continue;
      const file = resolve(baseDir, src.normalizedPath);
      let text =
        "// ---- generated by tools/orm/transform.mjs ----\n" +
        `import * as __orm_sqlite from ${lit(importPath(file, RUNTIME_SQLITE))};\n` +
        `import * as __orm_sys from ${lit(importPath(file, RUNTIME_SYSTEM))};\n`;
      for (const m of models) text += generate(m);
      const dump = process.env.MORGANA_ORM_DUMP;
      if (dump) {
        mkdirSync(dump, { recursive: true });
        writeFileSync(join(dump, src.normalizedPath.replace(/[\\/]/g, "_")), text);
      }
      // Parse under the user's path (so the generated code belongs to the same file and
      // its imports resolve from there), then move the statements into the user's Source.
      const path = src.normalizedPath;
      const internal = src.internalPath;
      parser.donelog.delete(internal);
      const before = parser.sources.length;
      parser.parseFile(text, path, false);
      const gen = parser.sources.splice(before, 1)[0];
      parser.donelog.add(internal);
      if (gen) for (const s of gen.statements) src.statements.push(s);
    }
  }
}
