/**
 * Generates the bundled datasets in data/ deterministically (same output on every run and machine):
 *   data/support_tickets.jsonl  classification: customer-support tickets -> billing / technical / shipping / account
 *   data/alpaca_tasks.json      alpaca SFT: small instructions with checkable answers
 *   data/arithmetic.txt         pre-training text: arithmetic facts written as sentences
 *   data/dataset_info.json      LLaMA-Factory-style descriptions of the three
 *
 * Run: npx tsc --module commonjs --target es2022 --types node --strict --outDir /tmp/tunelab-make-data scripts/make-data.ts \
 *        && node /tmp/tunelab-make-data/scripts/make-data.js        (from the repository root)
 *
 * The ticket label is carried by topic words spread over varied sentence shapes, with shared filler (products,
 * order numbers, greetings) and a share of tickets that also mention another topic, so a model must read the
 * words: no single token at a fixed position gives the label away.
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Rng } from "../sdk/util/random";

// Run from the repository root; an explicit output folder may be given as the first argument.
const OUT = process.argv[2] ?? join(process.cwd(), "data");
const rng = new Rng(20240601);
const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)];

// ---------- classification: support tickets ----------

const products = [
  "wireless headphones",
  "laptop stand",
  "coffee maker",
  "smart watch",
  "desk lamp",
  "phone case",
  "bluetooth speaker",
  "yoga mat",
  "backpack",
  "water bottle",
  "keyboard",
  "webcam",
  "air purifier",
  "blender",
];
const openers = ["", "", "Hi,", "Hello,", "Hi there,", "Hello team,", "Good morning,", "Hey,", "Dear support,", "Urgent:", "Quick question:", "Help please:"];
const closers = [
  "",
  "",
  "",
  "Thanks.",
  "Thank you!",
  "Please help.",
  "Any update would be appreciated.",
  "Can you look into this?",
  "Thanks in advance.",
  "This is frustrating.",
  "Please advise.",
];
const orderRef = () => `order #${10000 + rng.int(90000)}`;
const money = () => `$${5 + rng.int(300)}.${String(rng.int(100)).padStart(2, "0")}`;

type Slots = Record<string, () => string>;

const topics: Record<string, { slots: Slots; bodies: string[] }> = {
  billing: {
    slots: {
      charge: () =>
        pick([
          "charged twice",
          "double charged",
          "billed twice",
          "charged the wrong amount",
          "overcharged",
          "charged after I cancelled",
          "billed for a plan I never chose",
        ]),
      doc: () => pick(["invoice", "receipt", "billing statement", "bank statement", "credit card statement"]),
      pay: () => pick(["payment", "card payment", "PayPal payment", "bank transfer", "renewal fee", "subscription fee"]),
      want: () => pick(["a refund", "my money back", "a corrected invoice", "the extra charge reversed", "a partial refund", "the discount applied"]),
      amount: money,
    },
    bodies: [
      "I was {charge} for my {product} and would like {want}.",
      "My {doc} shows {amount} for {order}, but the price was lower. Please send {want}.",
      "The {pay} of {amount} went through twice this month.",
      "Why does my {doc} list a {pay} I do not recognise?",
      "I cancelled last week yet I was {charge}. I expect {want}.",
      "The coupon did not apply and I paid {amount} instead of the sale price for the {product}.",
      "Can you explain the {pay} on my {doc}? It looks like I was {charge}.",
      "Please issue {want} for {order}; my card was {charge}.",
      "My {pay} failed but the money left my account. Where did {amount} go?",
      "I need a copy of the {doc} for {order} for my taxes.",
    ],
  },
  technical: {
    slots: {
      fail: () => pick(["crashes", "freezes", "keeps restarting", "shows a blank screen", "will not turn on", "disconnects", "stops responding", "overheats"]),
      when: () =>
        pick([
          "after the latest update",
          "every time I open it",
          "when I connect it to wifi",
          "during setup",
          "after a few minutes",
          "since the firmware update",
          "when charging",
        ]),
      err: () => `error code ${pick(["E", "ERR-", "0x"])}${100 + rng.int(900)}`,
      thing: () =>
        pick(["the app", "the mobile app", "the companion app", "the firmware", "the bluetooth pairing", "the software", "the driver", "the settings page"]),
      tried: () => pick(["reinstalling", "a factory reset", "restarting my phone", "updating the firmware", "clearing the cache", "a different cable"]),
    },
    bodies: [
      "My {product} {fail} {when}.",
      "{thing} {fail} {when} and shows {err}.",
      "I get {err} whenever I try to pair the {product}. I already tried {tried}.",
      "The {product} {fail}; {tried} did not fix it.",
      "Since yesterday {thing} {fail}. Is there a known bug?",
      "Setup fails with {err} on step three for my {product}.",
      "After {tried}, {thing} still {fail} {when}.",
      "The screen flickers and {thing} {fail} {when}.",
      "Is there a fix for {err}? My {product} {fail}.",
      "The sound cuts out and {thing} {fail} {when}.",
    ],
  },
  shipping: {
    slots: {
      late: () =>
        pick([
          "has not arrived",
          "is two weeks late",
          "is still not here",
          "never arrived",
          "is stuck in transit",
          "was delivered to the wrong address",
          "arrived damaged",
        ]),
      track: () => pick(["tracking number", "tracking page", "courier website", "delivery status", "shipment tracking"]),
      carrier: () => pick(["the courier", "the delivery driver", "the post office", "the carrier", "UPS", "DHL"]),
      box: () => pick(["package", "parcel", "box", "delivery", "shipment"]),
      where: () => pick(["my front door", "the wrong house", "a locker", "the warehouse", "customs", "the depot"]),
    },
    bodies: [
      "My {box} for {order} {late}.",
      "The {track} for my {product} has not changed in ten days.",
      "{carrier} says the {box} was left at {where}, but I have nothing.",
      "Can I change the delivery address for {order} before it ships?",
      "The {product} {late} and the {track} shows no updates.",
      "My {box} {late}; {carrier} cannot find it.",
      "When will {order} be shipped? The {track} still says label created.",
      "The {box} with my {product} is held at {where}. How do I get it?",
      "I paid for express shipping but the {box} {late}.",
      "The outer {box} was crushed and the {product} inside is dented; it was left at {where}.",
    ],
  },
  account: {
    slots: {
      locked: () => pick(["locked out of my account", "unable to sign in", "unable to log in", "stuck at the login screen", "blocked after too many attempts"]),
      cred: () => pick(["password", "username", "email address", "phone number", "security question", "login email"]),
      mfa: () => pick(["two-factor code", "verification code", "one-time passcode", "authentication text", "confirmation email"]),
      act: () =>
        pick(["delete my account", "close my account", "merge my two accounts", "update my profile", "change my account name", "remove my saved addresses"]),
    },
    bodies: [
      "I am {locked} and the reset link for my {cred} never arrives.",
      "How do I change the {cred} on my profile?",
      "I no longer receive the {mfa}, so I am {locked}.",
      "Please {act}; I cannot find the option in settings.",
      "Someone changed my {cred} without permission. I am {locked}.",
      "The {mfa} expires before I can type it and I am {locked}.",
      "I want to {act} and keep my order history for the {product}.",
      "My {cred} is wrong on my account and I cannot edit it.",
      "I forgot my {cred} and the {mfa} goes to an old phone.",
      "Could you {act}? I signed up twice by mistake.",
    ],
  },
};

function fill(template: string, slots: Slots): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (name === "product") return pick(products);
    if (name === "order") return orderRef();
    const f = slots[name];
    if (!f) throw new Error(`template slot {${name}} has no values`);
    return f();
  });
}

function ticket(label: string): string {
  const t = topics[label];
  let body = fill(pick(t.bodies), t.slots);
  // About one ticket in six also mentions an order or another topic in passing, as real tickets do.
  if (rng.next() < 0.17) {
    const aside = pick([
      `I also placed ${orderRef()} last week.`,
      `This is about the ${pick(products)} I bought.`,
      "My account email is the same as before.",
      "I paid with my usual card.",
      "It was shipped quickly, at least.",
      "The app itself works fine.",
    ]);
    body = rng.next() < 0.5 ? `${aside} ${body}` : `${body} ${aside}`;
  }
  // A shared lead-in of varying length shifts where the topic words fall.
  const lead =
    rng.next() < 0.45
      ? pick([
          `Regarding ${orderRef()}.`,
          `About my ${pick(products)}.`,
          "I have a problem.",
          "I have been a customer for years and this is the first time I write.",
          `I bought a ${pick(products)} last month.`,
          "Sorry to bother you again.",
          "Not sure who handles this.",
        ])
      : "";
  const text = [pick(openers), lead, body, pick(closers)].filter((s) => s !== "").join(" ");
  return text[0].toUpperCase() + text.slice(1);
}

const labels = Object.keys(topics);
const tickets: { text: string; label: string }[] = [];
const seen = new Set<string>();
for (const label of labels) {
  let made = 0;
  while (made < 200) {
    const text = ticket(label);
    if (seen.has(text)) continue;
    seen.add(text);
    tickets.push({ text, label });
    made++;
  }
}
const ticketsOut = rng.shuffle(tickets);

// ---------- alpaca: small instructions with answers that can be checked ----------

const WORDS = [
  "apple",
  "river",
  "garden",
  "window",
  "rocket",
  "pencil",
  "castle",
  "orange",
  "bridge",
  "forest",
  "tiger",
  "candle",
  "mirror",
  "planet",
  "silver",
  "button",
  "island",
  "pepper",
  "dragon",
  "ticket",
];
const DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
const NUM = [
  "zero",
  "one",
  "two",
  "three",
  "four",
  "five",
  "six",
  "seven",
  "eight",
  "nine",
  "ten",
  "eleven",
  "twelve",
  "thirteen",
  "fourteen",
  "fifteen",
  "sixteen",
  "seventeen",
  "eighteen",
  "nineteen",
  "twenty",
];

type Alpaca = { instruction: string; input: string; output: string; system?: string; history?: [string, string][] };
const tasks: (() => Alpaca)[] = [
  () => {
    const a = rng.int(50),
      b = rng.int(50);
    return { instruction: "Add the two numbers.", input: `${a} and ${b}`, output: String(a + b) };
  },
  () => {
    const a = 20 + rng.int(60),
      b = rng.int(20);
    return { instruction: "Subtract the second number from the first.", input: `${a} and ${b}`, output: String(a - b) };
  },
  () => {
    const a = 2 + rng.int(10),
      b = 2 + rng.int(10);
    return { instruction: `What is ${a} times ${b}?`, input: "", output: `${a} times ${b} is ${a * b}.` };
  },
  () => {
    const w = pick(WORDS);
    return { instruction: "Reverse the letters of the word.", input: w, output: [...w].reverse().join("") };
  },
  () => {
    const w = pick(WORDS);
    return { instruction: "Write the word in capital letters.", input: w, output: w.toUpperCase() };
  },
  () => {
    const w = pick(WORDS);
    return { instruction: `How many letters are in the word "${w}"?`, input: "", output: `The word "${w}" has ${w.length} letters.` };
  },
  () => {
    const d = rng.int(7);
    return { instruction: "Which day comes after the given day?", input: DAYS[d], output: DAYS[(d + 1) % 7] };
  },
  () => {
    const n = rng.int(21);
    return { instruction: "Write the number in words.", input: String(n), output: NUM[n] };
  },
  () => {
    const xs = Array.from({ length: 4 }, () => rng.int(100));
    return {
      instruction: "Sort the numbers from smallest to largest.",
      input: xs.join(", "),
      output: xs
        .slice()
        .sort((a, b) => a - b)
        .join(", "),
    };
  },
  () => {
    const label = pick(labels);
    const text = ticket(label);
    return {
      instruction: "Classify the customer support ticket as billing, technical, shipping or account.",
      input: text,
      output: label,
      system: "You are a support triage assistant. Answer with one word.",
    };
  },
  () => {
    const a = rng.int(10),
      b = rng.int(10),
      c = rng.int(10);
    return {
      instruction: `And if you add ${c} more?`,
      input: "",
      output: String(a + b + c),
      history: [[`What is ${a} plus ${b}?`, String(a + b)]],
    };
  },
];
const alpaca: Alpaca[] = Array.from({ length: 100 }, (_, k) => tasks[k % tasks.length]());

// ---------- pre-training text: arithmetic facts ----------

const facts: string[] = [];
const factShapes = [
  (a: number, b: number) => `${cap(NUM[a])} plus ${NUM[b]} equals ${NUM[a + b] ?? String(a + b)}.`,
  (a: number, b: number) => `The sum of ${a} and ${b} is ${a + b}.`,
  (a: number, b: number) => `${a} times ${b} is ${a * b}.`,
  (a: number, b: number) => `If you take ${b} away from ${a + b}, you are left with ${a}.`,
  (a: number, b: number) => `${a * b} divided by ${b || 1} is ${b ? a : a * b}.`,
  (a: number, b: number) => `${a} is ${a > b ? "greater than" : a < b ? "less than" : "equal to"} ${b}.`,
];
function cap(s: string): string {
  return s[0].toUpperCase() + s.slice(1);
}
for (let k = 0; k < 200; k++) facts.push(factShapes[k % factShapes.length](rng.int(11), 1 + rng.int(10)));

// ---------- write ----------

mkdirSync(OUT, { recursive: true });
writeFileSync(join(OUT, "support_tickets.jsonl"), ticketsOut.map((t) => JSON.stringify(t)).join("\n") + "\n");
writeFileSync(join(OUT, "alpaca_tasks.json"), JSON.stringify(alpaca, null, 2) + "\n");
writeFileSync(join(OUT, "arithmetic.txt"), facts.join("\n") + "\n");
const info = {
  support_tickets: {
    file_name: "support_tickets.jsonl",
    formatting: "classification",
    columns: { text: "text", label: "label" },
  },
  alpaca_tasks: {
    file_name: "alpaca_tasks.json",
    columns: { prompt: "instruction", query: "input", response: "output", system: "system", history: "history" },
  },
  arithmetic_pt: {
    file_name: "arithmetic.txt",
    columns: { prompt: "text" },
  },
};
writeFileSync(join(OUT, "dataset_info.json"), JSON.stringify(info, null, 2) + "\n");
console.log(`wrote ${ticketsOut.length} tickets, ${alpaca.length} alpaca rows, ${facts.length} facts to ${OUT}`);
