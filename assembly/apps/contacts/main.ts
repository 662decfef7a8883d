// contacts: the Mirage paper's example (§3.3). Typed values persisted through
// generated code (@orm) in SQLite, on the raw virtual disk — no filesystem.
// Each boot records itself, saves a few contacts, and asks the paper's question:
// which contacts have an address at ac.uk? Boot it twice on the same disk and the
// second boot finds the first one's contacts.
import { block, console, sched, sqlite, time } from "../../runtime";

@orm
class Contact {
  id: i64 = 0;
  name: string = "";
  email: string = "";
  phone: string | null = null;
  boot: i64 = 0;
}

@orm
class Boot {
  id: i64 = 0;
  /** Wall-clock time of the boot, ms since the Unix epoch. */
  at: i64 = 0;
}

const PEOPLE: string[][] = [
  ["Anil Madhavapeddy", "avsm2@cl.cam.ac.uk", "+44 1223 000001"],
  ["Richard Mortier", "rmm1002@cam.ac.uk", ""],
  ["Steven Hand", "steven.hand@cl.cam.ac.uk", "+44 1223 000003"],
  ["Thomas Gazagnaire", "thomas@gazagnaire.org", ""],
  ["David Scott", "dave@recoil.org", "+44 1223 000005"],
  ["Jon Crowcroft", "jon.crowcroft@cl.cam.ac.uk", ""],
];

function main(): void {
  const o = sched.wait(block.open());
  if (!o.ok) return console.log("contacts: " + o.error);
  const db = sqlite.open(o.device!, "contacts.db");
  if (!db.ok) return console.log("contacts: " + db.error);

  const boots = BootStore.open(db);
  const contacts = ContactStore.open(db);
  if (!boots.ok) return console.log("contacts: " + boots.error);
  if (!contacts.ok) return console.log("contacts: " + contacts.error);

  const before = contacts.count();
  const b = new Boot();
  b.at = time.wall() / time.NS_PER_MS;
  boots.save(b);
  console.log("contacts: boot " + b.id.toString() + ", " + before.toString() + " contacts already on " + o.device!.name);

  // One transaction for the batch: one journal, one commit.
  if (!db.begin()) db.fail("BEGIN");
  for (let i = 0; i < PEOPLE.length; i++) {
    const c = new Contact();
    c.name = PEOPLE[i][0];
    c.email = PEOPLE[i][1];
    c.phone = PEOPLE[i][2].length > 0 ? PEOPLE[i][2] : null;
    c.boot = b.id;
    contacts.save(c);
  }
  if (!db.commit()) db.fail("COMMIT");

  const academics = contacts.query().emailContains("ac.uk").orderByName().all();
  for (let i = 0; i < academics.length; i++) {
    const c = academics[i];
    if (c.boot == b.id) console.log("  " + c.name + " <" + c.email + ">" + (c.phone != null ? " " + c.phone! : ""));
  }
  const total = contacts.count();
  const atAcUk = contacts.query().emailContains("ac.uk").count();
  console.log("contacts: " + total.toString() + " contacts, " + atAcUk.toString() + " at ac.uk, after " + boots.count().toString() + " boots");
  if (!db.close()) db.fail("close");
}

main();
