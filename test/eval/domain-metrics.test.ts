/** FR (finance facts) and DIQA (medical rubric) on hand-checked Chinese and English answers. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { extractFacts, fr, factCorrectness } from "../../sdk/eval/finance-facts";
import { diqa, diqaScore, DEFAULT_MEDICAL_RUBRIC } from "../../sdk/eval/medical-rubric";

const close = (a: number | null, b: number, msg = "") => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${msg} expected ${b}, got ${a}`);
const short = (fs: { kind: string; value: number | string; unit?: string }[]) => fs.map((f) => `${f.kind}:${f.value}${f.unit ? " " + f.unit : ""}`);

const zhRef = "2023年净利润为1.2亿元，同比增长12%，营收3,000万元，发行500万股，2023年3月5日公告。";
const zhAns = "净利润120,000,000元，增长12 %，营收3000万，于2023-03-05公告，发行600万股。";
const enRef = "Revenue rose 12.5% to $1.5 billion in Q3 2023, up 3 percentage points; Kweichow Moutai reported on March 5, 2023.";
const enAns = "Moutai's revenue grew 12.5 percent to 1,500 million dollars in 2023Q3, up 2 percentage points.";
const entities = [{ name: "Kweichow Moutai", aliases: ["贵州茅台", "Moutai"] }];

test("FR extracts Chinese number forms: 1.2亿元, 3,000万元, 12%, 500万股, dates", () => {
  assert.deepEqual(short(extractFacts(zhRef)), [
    "date:2023-03-05",
    "date:2023",
    "money:120000000 CNY",
    "percent:12",
    "money:30000000 CNY",
    "number:5000000 shares",
  ]);
  assert.deepEqual(short(extractFacts("2023年第三季度毛利率下降25基点，约￥3.5亿；２０２４年１月")), [
    "date:2023-Q3",
    "date:2024-01",
    "points:0.25",
    "money:350000000 CNY",
  ]);
});

test("FR of a Chinese answer: 4 of 6 reference facts agree, with the detail of what matched", () => {
  const d = factCorrectness(zhAns, zhRef);
  close(d.fr, 4 / 6);
  assert.deepEqual(
    d.matched.map((m) => [m.reference.text, m.answer.text]),
    [
      ["2023年3月5日", "2023-03-05"],
      ["1.2亿元", "120,000,000元"],
      ["12%", "12 %"],
      ["3,000万元", "3000万"],
    ],
  );
  assert.deepEqual(short(d.missed), ["date:2023", "number:5000000 shares"]);
  assert.deepEqual(short(d.extra), ["number:6000000 shares"]);
});

test("FR of an English answer with entities; corpus FR pools facts", () => {
  assert.deepEqual(short(extractFacts(enRef, { entities })), [
    "date:2023-Q3",
    "date:2023-03-05",
    "percent:12.5",
    "money:1500000000 USD",
    "points:3",
    "entity:Kweichow Moutai",
  ]);
  const d = factCorrectness(enAns, enRef, { entities });
  close(d.fr, 4 / 6);
  assert.deepEqual(short(d.missed), ["date:2023-03-05", "points:3"]);
  const r = fr([zhAns, enAns, "无数字"], [zhRef, enRef, "没有事实"], { entities });
  close(r.fr, 8 / 12);
  close(r.frMacro, 4 / 6);
  close(r.factPrecision, 8 / 10);
  assert.equal(r.perSample[2].fr, null);
});

test("FR rules are configurable: currency, strict units, tolerance, bare numbers", () => {
  close(factCorrectness("1亿元", "$100 million").fr, 0, "USD against CNY");
  close(factCorrectness("3000万", "3,000万元", { strictUnits: true }).fr, 0, "strict units");
  close(factCorrectness("1.19亿", "1.2亿").fr, 0, "exact by default");
  close(factCorrectness("1.19亿", "1.2亿", { relTolerance: 0.01 }).fr, 1, "1% tolerance");
  assert.equal(factCorrectness("共 3 项", "共 3 项").fr, null, "bare numbers are not facts by default");
  close(factCorrectness("共 3 项", "共 3 项", { bareNumbers: true }).fr, 1);
  assert.throws(() => fr(["a"], []), /1 answers but 0 references/);
});

const zhMedRef = "患者发热、咳嗽3天。诊断：社区获得性肺炎。建议血常规和胸片检查。治疗：阿莫西林口服，青霉素过敏者禁用阿莫西林。3天后复诊。";
const enMedRef = "Fever and cough for 3 days. Diagnosis: pneumonia. Tests: CBC and chest X-ray. Treat with amoxicillin. Follow up in 3 days.";

test("DIQA of a Chinese answer: covered fields, a negated symptom as a contradiction", () => {
  const good = diqaScore("症状为发烧和咳嗽，考虑肺炎。需做血常规、胸片。可服用阿莫西林治疗；对青霉素过敏者禁用。三天后复查。", zhMedRef);
  close(good.diqa, 1);
  // weights 1,2,1,2,1,1 (all six required). symptoms 1/2 (咳嗽 negated: contradicted, -1), diagnosis 1, treatment 1,
  // examinations, contraindications and follow-up 0: (0.5 + 2 + 2 - 1) / 8
  const mixed = diqaScore("患者发热，无咳嗽。考虑肺炎。建议服用阿莫西林。", zhMedRef);
  close(mixed.diqa, 3.5 / 8);
  const sym = mixed.fields.find((f) => f.name === "symptoms")!;
  assert.deepEqual([sym.matched, sym.contradicted], [["发热"], ["咳嗽"]]);
  close(diqaScore("无发热、咳嗽。排除肺炎。", zhMedRef).diqa, 0, "clamped at 0");
});

test("DIQA of an English answer; penalty and required fields are options", () => {
  // required: symptoms 1, diagnosis 2, examinations 1, treatment 2, follow-up 1 (no contraindication in the reference) = 7
  // symptoms 1/2 and contradicted (no cough), diagnosis 1, examinations 1/2 (x-ray, not CBC), treatment 0, follow-up 1
  const ans = "Symptoms: fever, no cough. Likely pneumonia; order a chest X-ray. Treat with ibuprofen. Follow up if worse.";
  close(diqaScore(ans, enMedRef).diqa, (0.5 + 2 + 0.5 + 0 + 1 - 1) / 7);
  close(diqaScore(ans, enMedRef, { penalty: 0 }).diqa, 4 / 7);
  close(diqaScore(ans, enMedRef, { required: "all" }).diqa, 3 / 8);
  // no reference: every field required and scored by whether the answer addresses it (all but contraindications)
  close(diqaScore(ans, null).diqa, 7 / 8);
  const r = diqa([ans, "Fever and cough. Diagnosis: pneumonia."], [enMedRef, null]);
  assert.equal(r.perSample.length, 2);
  close(r.contradictionRate, 1 / 2);
  assert.throws(() => diqaScore("x", "y", { rubric: [{ ...DEFAULT_MEDICAL_RUBRIC[0], weight: 0 }] }), /weight must be a number > 0/);
});
