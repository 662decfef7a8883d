// ormtest: every method and query the @orm transform (tools/orm/transform.mjs) generates,
// against SQLite in memory: each field type with its extremes, optional NULLs, unicode,
// strings that would break spliced SQL, keyword names, and migrations on open.
// Ends with TEST PASS or FAIL. With a boot argument it instead shows how a misuse ends
// the unikernel: "nan" (saving a NaN), "refused" (using a store whose open failed),
// "closed" (using a closed store), "duplicate" (saving an id that exists). And on the
// virtual disk, one boot after another: "disk-old" (an old, smaller Contact table made
// with raw SQL), "disk-new" (opens it through ContactStore: migrates and saves),
// "disk-read" (lists what the earlier boots left).
import { console, boot, sched, sqlite, block, panic } from "../../runtime";
import { check, eq, result } from "../../runtime/testing";

@orm
class Contact {
  id: i64 = 0;
  name: string = "";
  email: string = "";
  age: i32 = 0;
  score: f64 = 0;
  vip: bool = false;
  phone: string | null = null;
}

/** One field of every supported type. */
@orm
class Sample {
  id: i64 = 0;
  s: string = "";
  o: string | null = null;
  a8: i8 = 0;
  a16: i16 = 0;
  a32: i32 = 0;
  a64: i64 = 0;
  b8: u8 = 0;
  b16: u16 = 0;
  b32: u32 = 0;
  sz: isize = 0;
  r32: f32 = 0;
  r64: f64 = 0;
  flag: bool = false;
  static notStored: i32 = 7;
  get twice(): i32 {
    return this.a32 * 2;
  }
}

/** SQL keywords as table and column names: only quoting makes them work. */
@orm
class Order {
  id: i64 = 0;
  group: string = "";
  select: i32 = 0;
}

function contact(name: string, email: string, age: i32, score: f64, vip: bool, phone: string | null): Contact {
  const c = new Contact();
  c.name = name;
  c.email = email;
  c.age = age;
  c.score = score;
  c.vip = vip;
  c.phone = phone;
  return c;
}

function names(cs: Contact[]): string {
  let s = "";
  for (let i = 0; i < cs.length; i++) s += (i > 0 ? "," : "") + cs[i].name;
  return s;
}

/** One value of a statement's first row, as text. */
function scalar(db: sqlite.Database, sql: string): string {
  const s = db.statement(sql);
  let v = "(no row)";
  if (s.step()) v = s.isNull(0) ? "NULL" : s.columnText(0);
  s.finalize();
  return v;
}

const INJECT = "Robert'); DROP TABLE \"Contact\";--";

function contacts(): void {
  const db = sqlite.openMemory();
  check(db.ok, "openMemory: " + db.error);
  const st = ContactStore.open(db);
  check(st.ok, "ContactStore.open creates the table: " + st.error);
  eq(scalar(db, "SELECT sql FROM sqlite_schema WHERE name = 'Contact'"),
    'CREATE TABLE "Contact" ("id" INTEGER PRIMARY KEY, "name" TEXT NOT NULL, "email" TEXT NOT NULL, "age" INTEGER NOT NULL, "score" REAL NOT NULL, "vip" INTEGER NOT NULL CHECK("vip" IN (0,1)), "phone" TEXT)',
    "the table's schema");
  eq(st.count().toString(), "0", "count of an empty table");
  check(st.get(1) == null, "get on an empty table is null");

  const anil = contact("Anil", "anil@cam.ac.uk", 40, 9.5, true, null);
  const id = st.save(anil);
  eq(id.toString(), "1", "save returns the new id");
  eq(anil.id.toString(), "1", "save sets the id");
  const rest = [
    contact("Richard", "rmm@cam.ac.uk", 30, 7.25, false, "+44 1223 000000"),
    contact("Zoë 🐫 日本語", "zoe@example.org", 17, -1.5, true, "ünï"),
    contact(INJECT, "x'%_@example.com", 66, 0, true, null),
    contact("50% off_sale", "sale@shop.example", 65, 3, true, "100%"),
    contact("Steven", "sh@cam.ac.uk", 18, 8, true, ""),
  ];
  for (let i = 0; i < rest.length; i++) st.save(rest[i]);
  eq(st.count().toString(), "6", "count after six saves");
  eq(rest[4].id.toString(), "6", "ids are assigned in order");

  // get: every field back, including unicode, NULL, the empty string and the injection text.
  const z = st.get(rest[1].id)!;
  eq(z.name, "Zoë 🐫 日本語", "unicode name round-trips");
  eq(z.phone!, "ünï", "unicode optional round-trips");
  check(z.vip && z.age == 17 && z.score == -1.5 && z.email == "zoe@example.org", "every field of a row round-trips");
  check(st.get(anil.id)!.phone == null, "a null optional reads back as null");
  eq(st.get(rest[4].id)!.phone!, "", "an empty optional string is not NULL");
  eq(st.get(rest[2].id)!.name, INJECT, "a name with quotes and SQL round-trips (it was bound, not spliced)");
  eq(scalar(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'Contact'"), "1", "the table is still there");

  // The paper's query, and the rest of the string conditions.
  eq(st.query().emailContains("ac.uk").count().toString(), "3", "emailContains(\"ac.uk\").count()");
  eq(st.query().emailContains("%").count().toString(), "1", "contains % matches only a literal % (no LIKE)");
  eq(st.query().emailContains("_").count().toString(), "1", "contains _ matches only a literal _");
  eq(st.query().nameContains("").count().toString(), "6", "contains \"\" matches every row");
  eq(names(st.query().nameStartsWith("50%").all()), "50% off_sale", "startsWith with %");
  eq(names(st.query().nameStartsWith("Zoë 🐫").all()), "Zoë 🐫 日本語", "startsWith with unicode");
  eq(st.query().nameStartsWith("nil").count().toString(), "0", "startsWith is a prefix test");
  eq(names(st.query().nameEq(INJECT).all()), INJECT, "nameEq with an injection string");
  eq(st.query().nameNe("Anil").count().toString(), "5", "nameNe");
  eq(names(st.query().emailEq("anil@cam.ac.uk").all()), "Anil", "emailEq");

  // Numbers and bool, ordering, limit and offset.
  eq(names(st.query().ageBetween(18, 65).vipIs(true).orderByName().limit(10).all()),
    "50% off_sale,Anil,Steven", "ageBetween(18, 65).vipIs(true).orderByName().limit(10).all()");
  eq(names(st.query().ageEq(40).all()), "Anil", "ageEq");
  eq(st.query().ageNe(40).count().toString(), "5", "ageNe");
  eq(names(st.query().ageLt(18).all()), "Zoë 🐫 日本語", "ageLt");
  eq(st.query().ageLe(18).count().toString(), "2", "ageLe");
  eq(names(st.query().ageGt(65).all()), INJECT, "ageGt");
  eq(st.query().ageGe(65).count().toString(), "2", "ageGe");
  eq(names(st.query().scoreGt(7.25).orderByScore(true).all()), "Anil,Steven", "scoreGt, orderByScore(desc)");
  eq(names(st.query().scoreBetween(-2, 0).orderByScore().all()), "Zoë 🐫 日本語," + INJECT, "scoreBetween");
  eq(st.query().scoreEq(3).count().toString(), "1", "scoreEq");
  eq(st.query().scoreNe(3).count().toString(), "5", "scoreNe");
  eq(st.query().scoreLe(0).count().toString(), "2", "scoreLe");
  eq(st.query().scoreGe(8).count().toString(), "2", "scoreGe");
  eq(st.query().scoreLt(-1).count().toString(), "1", "scoreLt");
  eq(st.query().vipIs(false).count().toString(), "1", "vipIs(false)");
  eq(names(st.query().idGt(4).all()), "50% off_sale,Steven", "idGt, default order by id");
  eq(names(st.query().idBetween(2, 3).orderById(true).all()), "Zoë 🐫 日本語,Richard", "idBetween, orderById(desc)");
  eq(st.query().idEq(1).idNe(1).count().toString(), "0", "conditions are ANDed");
  eq(names(st.query().vipIs(true).orderByAge(true).limit(2).all()), INJECT + ",50% off_sale", "orderByAge(desc).limit(2)");
  eq(names(st.query().orderByAge().offset(4).all()), "50% off_sale," + INJECT, "offset without limit");
  eq(names(st.query().orderByAge().limit(2).offset(1).all()), "Steven,Richard", "limit and offset");
  eq(names(st.query().vipIs(true).orderByVip().orderByName(true).limit(1).all()), "Zoë 🐫 日本語", "two orderBy, in call order");
  eq(st.query().limit(0).all().length.toString(), "0", "limit(0)");
  eq(st.query().limit(-1).count().toString(), "6", "limit(-1) is no limit");
  eq(st.query().orderByAge().limit(4).offset(3).count().toString(), "3", "count after limit and offset");

  // Optional fields.
  eq(names(st.query().phoneIsNull().all()), "Anil," + INJECT, "phoneIsNull");
  eq(st.query().phoneIsNotNull().count().toString(), "4", "phoneIsNotNull");
  eq(st.query().phoneIsNull().first()!.name, "Anil", "phoneIsNull().first()");
  eq(names(st.query().phoneEq("").all()), "Steven", "phoneEq(\"\")");
  eq(st.query().phoneNe("").count().toString(), "3", "phoneNe never matches NULL");
  eq(names(st.query().phoneContains("%").all()), "50% off_sale", "phoneContains");
  eq(names(st.query().phoneStartsWith("+44").all()), "Richard", "phoneStartsWith");
  check(st.query().nameEq("nobody").first() == null, "first with no match is null");
  eq(st.query().orderByName(true).first()!.name, "Zoë 🐫 日本語", "first follows the order");
  eq(st.query().orderByAge().offset(1).first()!.name, "Steven", "first after an offset");

  // update and delete.
  anil.age = 41;
  anil.phone = "+44 1223 111111";
  anil.name = "Anil M";
  check(st.update(anil), "update an existing row returns true");
  const a2 = st.get(anil.id)!;
  check(a2.age == 41 && a2.name == "Anil M" && a2.phone! == "+44 1223 111111", "update wrote every field");
  a2.phone = null;
  st.update(a2);
  check(st.get(anil.id)!.phone == null, "update can set an optional back to NULL");
  const ghost = contact("Ghost", "", 1, 0, false, null);
  ghost.id = 999;
  check(!st.update(ghost), "update of a missing id returns false");
  check(st.get(999) == null, "update of a missing id inserts nothing");
  check(st.delete(rest[0].id), "delete an existing row returns true");
  check(!st.delete(rest[0].id), "delete it again returns false");
  eq(st.count().toString(), "5", "count after a delete");
  eq(st.query().nameEq(INJECT).delete().toString(), "1", "query().nameEq(...).delete() returns the rows deleted");
  eq(st.query().vipIs(true).orderByAge().limit(1).delete().toString(), "1", "delete with order and limit deletes only that many");
  eq(names(st.query().all()), "Anil M,50% off_sale,Steven", "the rows left (the youngest vip, Zoë, went)");
  eq(st.query().delete().toString(), "3", "query().delete() with no condition deletes every row");
  eq(st.count().toString(), "0", "empty again");

  // Saving with an id chosen by the caller, and an unsaved id of 0 updating nothing.
  const fixed = contact("Fixed", "", 0, 0, false, null);
  fixed.id = 42;
  eq(st.save(fixed).toString(), "42", "save keeps a non-zero id");
  eq(st.get(42)!.name, "Fixed", "the row has that id");
  const unsaved = contact("Unsaved", "", 0, 0, false, null);
  check(!st.update(unsaved), "update of an unsaved object (id 0) returns false");

  // The table enforces the types: bool is 0 or 1, NOT NULL holds.
  check(!db.exec("INSERT INTO \"Contact\" (name, email, age, score, vip) VALUES ('x', '', 0, 0, 2)"), "a bool column refuses 2");
  check(db.error.indexOf("CHECK constraint failed") >= 0, "with a CHECK constraint error: " + db.error);
  check(!db.exec("INSERT INTO \"Contact\" (name, email, age, score, vip) VALUES (NULL, '', 0, 0, 0)"), "a string column refuses NULL");

  // The same table opened twice: the second open finds the columns as they should be.
  const again = ContactStore.open(db);
  check(again.ok, "a second open of an existing table: " + again.error);
  eq(again.get(42)!.name, "Fixed", "the second store sees the rows");
  again.close();
  st.close();
  check(db.close(), "db.close: " + db.error);
}

function samples(): void {
  const db = sqlite.openMemory();
  const st = SampleStore.open(db);
  check(st.ok, "SampleStore.open: " + st.error);
  eq(Sample.notStored.toString(), "7", "a static field is left alone");
  eq(scalar(db, "SELECT group_concat(name, ',') FROM pragma_table_info('Sample')"),
    "id,s,o,a8,a16,a32,a64,b8,b16,b32,sz,r32,r64,flag", "static fields and getters are not columns");

  const lo = new Sample();
  lo.s = "a\0b";
  lo.a8 = i8.MIN_VALUE;
  lo.a16 = i16.MIN_VALUE;
  lo.a32 = i32.MIN_VALUE;
  lo.a64 = i64.MIN_VALUE;
  lo.b8 = 0;
  lo.sz = <isize>i32.MIN_VALUE;
  lo.r32 = f32.MIN_VALUE;
  lo.r64 = -Infinity;
  lo.flag = false;
  const hi = new Sample();
  hi.s = "\"'`;\\";
  hi.o = "0";
  hi.a8 = i8.MAX_VALUE;
  hi.a16 = i16.MAX_VALUE;
  hi.a32 = i32.MAX_VALUE;
  hi.a64 = i64.MAX_VALUE;
  hi.b8 = u8.MAX_VALUE;
  hi.b16 = u16.MAX_VALUE;
  hi.b32 = u32.MAX_VALUE;
  hi.sz = <isize>i32.MAX_VALUE;
  hi.r32 = f32.MAX_VALUE;
  hi.r64 = 0.1 + 0.2;
  hi.flag = true;
  const mid = new Sample();
  mid.r64 = Infinity;
  mid.r32 = -0.5;
  mid.a64 = -1;
  mid.b32 = 1 << 31;
  st.save(lo);
  st.save(hi);
  st.save(mid);

  const l = st.get(lo.id)!;
  check(l.a8 == i8.MIN_VALUE && l.a16 == i16.MIN_VALUE && l.a32 == i32.MIN_VALUE, "i8, i16, i32 minimums round-trip");
  check(l.a64 == i64.MIN_VALUE, "i64 minimum round-trips");
  check(l.sz == <isize>i32.MIN_VALUE, "isize minimum round-trips");
  check(l.r32 == f32.MIN_VALUE && l.r64 == -Infinity, "f32 minimum and -Infinity round-trip");
  check(l.s == "a\0b" && l.s.length == 3, "a string with a NUL round-trips");
  check(l.o == null && !l.flag, "null optional and false");
  const h = st.get(hi.id)!;
  check(h.a8 == i8.MAX_VALUE && h.a16 == i16.MAX_VALUE && h.a32 == i32.MAX_VALUE, "i8, i16, i32 maximums round-trip");
  check(h.a64 == i64.MAX_VALUE, "i64 maximum round-trips");
  check(h.b8 == u8.MAX_VALUE && h.b16 == u16.MAX_VALUE && h.b32 == u32.MAX_VALUE, "u8, u16, u32 maximums round-trip");
  check(h.sz == <isize>i32.MAX_VALUE, "isize maximum round-trips");
  check(h.r32 == f32.MAX_VALUE, "f32 maximum round-trips");
  check(h.r64 == 0.1 + 0.2, "0.1 + 0.2 round-trips bit for bit");
  check(h.flag && h.o! == "0", "true and a non-null optional");
  eq(h.s, "\"'`;\\", "quotes and backslash round-trip");
  eq(scalar(db, "SELECT b32 FROM \"Sample\" WHERE id = " + hi.id.toString()), "4294967295", "u32 is stored unsigned");
  const m = st.get(mid.id)!;
  check(m.r64 == Infinity && m.r32 == -0.5 && m.b32 == 2147483648, "Infinity, a negative f32, u32 above i32's range");

  eq(st.query().a64Eq(i64.MAX_VALUE).first()!.id.toString(), hi.id.toString(), "a64Eq(i64.MAX_VALUE)");
  eq(st.query().a64Lt(i64.MIN_VALUE + 1).first()!.id.toString(), lo.id.toString(), "a64Lt(i64.MIN_VALUE + 1)");
  eq(st.query().a64Between(i64.MIN_VALUE, -1).count().toString(), "2", "a64Between over the negative range");
  eq(st.query().a32Le(i32.MIN_VALUE).count().toString(), "1", "a32Le(i32.MIN_VALUE)");
  eq(st.query().b32Gt(u32.MAX_VALUE - 1).count().toString(), "1", "b32Gt(u32.MAX_VALUE - 1) compares unsigned");
  eq(st.query().b32Ge(1 << 31).count().toString(), "2", "b32Ge(2^31)");
  eq(st.query().b8Eq(255).count().toString(), "1", "b8Eq(255)");
  eq(st.query().a8Ne(0).count().toString(), "2", "a8Ne");
  eq(st.query().a16Gt(0).count().toString(), "1", "a16Gt");
  eq(st.query().b16Le(0).count().toString(), "2", "b16Le");
  eq(st.query().szLt(0).count().toString(), "1", "szLt");
  eq(st.query().r64Gt(1e308).count().toString(), "1", "r64Gt(1e308) finds Infinity");
  eq(st.query().r64Eq(0.1 + 0.2).count().toString(), "1", "r64Eq(0.1 + 0.2) exactly");
  eq(st.query().r32Lt(0).count().toString(), "1", "r32Lt");
  eq(st.query().r64Eq(NaN).count().toString(), "0", "comparing with NaN (bound as NULL) matches nothing");
  eq(st.query().flagIs(true).count().toString(), "1", "flagIs(true)");
  eq(st.query().oIsNull().count().toString(), "2", "oIsNull");
  eq(st.query().oEq("0").count().toString(), "1", "oEq");
  eq(st.query().sContains("\0").count().toString(), "1", "sContains a NUL");
  eq(st.query().sEq("\"'`;\\").count().toString(), "1", "sEq with quotes and backslash");
  st.close();
  db.close();
}

function keywords(): void {
  const db = sqlite.openMemory();
  const st = OrderStore.open(db);
  check(st.ok, "a class named Order with fields group and select: " + st.error);
  const o = new Order();
  o.group = "g";
  o.select = 3;
  st.save(o);
  eq(st.query().groupEq("g").selectGe(3).orderBySelect().first()!.group, "g", "queries on keyword columns");
  db.close();
}

function migrations(): void {
  // A table with fewer columns: open adds the rest, existing rows get zero values / NULL.
  const db = sqlite.openMemory();
  check(db.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT NULL); INSERT INTO \"Contact\" VALUES (7, 'Old')"), "an old table: " + db.error);
  const st = ContactStore.open(db);
  check(st.ok, "open adds the missing columns: " + st.error);
  eq(scalar(db, "SELECT group_concat(name || ' ' || type || ' ' || \"notnull\" || ' ' || ifnull(dflt_value, 'none'), '; ') FROM pragma_table_info('Contact')"),
    "id INTEGER 0 none; name TEXT 1 none; email TEXT 1 ''; age INTEGER 1 0; score REAL 1 0.0; vip INTEGER 1 0; phone TEXT 0 none",
    "the added columns and their defaults");
  const old = st.get(7)!;
  check(old.name == "Old" && old.email == "" && old.age == 0 && old.score == 0 && !old.vip && old.phone == null,
    "an old row reads with zero values and NULL");
  const n = contact("New", "n@example.org", 5, 1, true, "1");
  st.save(n);
  eq(n.id.toString(), "8", "saving after a migration");
  check(db.exec("INSERT INTO \"Contact\" (name, vip) VALUES ('x', 3)") == false, "the added bool column has its CHECK");
  st.close();
  const st2 = ContactStore.open(db);
  check(st2.ok, "reopening the migrated table: " + st2.error);
  db.close();

  // A column the class does not have: refused, nothing changed.
  const db2 = sqlite.openMemory();
  db2.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT NULL, \"fax\" TEXT)");
  const r = ContactStore.open(db2);
  check(!r.ok, "a column the class has no field for is refused");
  eq(r.error, "ContactStore: table \"Contact\" has a column \"fax\" (TEXT) that class Contact has no field for; refusing to open: migrate the data by hand or restore the field", "its message");
  eq(scalar(db2, "SELECT count(*) FROM pragma_table_info('Contact')"), "3", "a refused open adds no columns");
  db2.close();

  // A column whose type differs.
  const db3 = sqlite.openMemory();
  db3.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT NULL, \"age\" TEXT NOT NULL)");
  const r3 = ContactStore.open(db3);
  check(!r3.ok, "a column of another type is refused");
  eq(r3.error, "ContactStore: table \"Contact\" column \"age\" is TEXT NOT NULL on disk but INTEGER NOT NULL in class Contact (age: i32); refusing to open: migrate the data by hand or restore the field", "its message");
  db3.close();

  // A nullable column where the class has NOT NULL, and a missing primary key.
  const db4 = sqlite.openMemory();
  db4.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER PRIMARY KEY, \"email\" TEXT)");
  eq(ContactStore.open(db4).error, "ContactStore: table \"Contact\" column \"email\" is TEXT on disk but TEXT NOT NULL in class Contact (email: string); refusing to open: migrate the data by hand or restore the field", "a nullable column where the class has string");
  db4.close();
  const db5 = sqlite.openMemory();
  db5.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER, \"name\" TEXT NOT NULL)");
  eq(ContactStore.open(db5).error, "ContactStore: table \"Contact\" column \"id\" is INTEGER on disk but INTEGER PRIMARY KEY in class Contact (id: i64); refusing to open: migrate the data by hand or restore the field", "an id that is not the primary key");
  db5.close();

  // A closed database.
  const db6 = sqlite.openMemory();
  db6.close();
  const r6 = ContactStore.open(db6);
  eq(r6.error, "ContactStore: the database is not open", "open on a closed database");
}

const args = boot.args();
const mode = args.length > 0 ? args[0] : "";
if (mode == "") {
  contacts();
  samples();
  keywords();
  migrations();
  result();
} else if (mode.startsWith("disk-")) {
  const o = sched.wait(block.open());
  if (!o.ok) panic(o.error);
  const db = sqlite.open(o.device!, "orm.db");
  if (!db.ok) panic(db.error);
  if (mode == "disk-old") {
    if (!db.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER PRIMARY KEY, \"name\" TEXT NOT NULL); INSERT INTO \"Contact\" (name) VALUES ('Old')"))
      db.fail("disk-old");
    console.log("old table made");
  } else {
    const st = ContactStore.open(db);
    if (!st.ok) panic(st.error);
    if (mode == "disk-new") {
      const c = contact("Anil", "anil@cam.ac.uk", 40, 0.5, true, "+44");
      st.save(c);
      console.log("saved " + c.id.toString());
    }
    const all = st.query().all();
    for (let i = 0; i < all.length; i++) {
      const c = all[i];
      console.log(c.id.toString() + " " + c.name + " <" + c.email + "> " + c.age.toString() + " " + c.score.toString() + " " +
        (c.vip ? "vip" : "-") + " " + (c.phone == null ? "null" : c.phone!));
    }
    console.log(st.query().emailContains("ac.uk").count().toString() + " at ac.uk");
  }
  if (!db.close()) db.fail("close");
} else {
  const db = sqlite.openMemory();
  if (mode == "nan") {
    const st = SampleStore.open(db);
    const s = new Sample();
    s.r64 = NaN;
    console.log("saving a NaN");
    st.save(s);
  } else if (mode == "refused") {
    db.exec("CREATE TABLE \"Contact\" (\"id\" INTEGER PRIMARY KEY, \"fax\" TEXT)");
    const st = ContactStore.open(db);
    console.log("open: " + st.error);
    st.count();
  } else if (mode == "closed") {
    const st = ContactStore.open(db);
    st.close();
    st.query();
  } else if (mode == "duplicate") {
    const st = ContactStore.open(db);
    const c = contact("A", "", 0, 0, false, null);
    st.save(c);
    c.name = "B";
    st.save(c);
  }
  console.log("not reached");
}
