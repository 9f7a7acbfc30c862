#!/usr/bin/env node
// Simulate one vendor-sync job: print two progress lines, sleep a fraction of
// a second, then print the summary line "Upserted N products".
//
// Usage: node scripts/seed.js JOB (package.json runs it as npm run SCRIPT).
//
// EXAMPLE_FAIL is a comma-separated list of npm script names. A listed script
// prints "SCRIPT: failing on purpose (EXAMPLE_FAIL)" to stderr after its first
// progress line and exits with code 1. When seed.js runs outside npm,
// EXAMPLE_FAIL matches the job name instead.

"use strict";

// The source each job reads and the number of products it upserts. The
// counts are fixed so that runs are comparable and metrics stay stable.
const JOBS = {
  "products": { source: "the Magento product export", products: 24000 },
  "keystone-codes": { source: "the Keystone FTP code file", products: 3100 },
  "quadratec": { source: "the Quadratec feed", products: 1840 },
  "quadratec-inventory": { source: "the Quadratec inventory file", products: 1790 },
  "omix": { source: "the Omix-ADA feed", products: 2260 },
  "omix-inventory": { source: "the Omix-ADA inventory file", products: 2210 },
  "wheelpros": { source: "the Wheel Pros feed", products: 5400 },
  "wheelpros-inventory": { source: "the Wheel Pros inventory file", products: 5350 },
  "keystone-ftp2": { source: "the Keystone FTP v2 drop", products: 4100 },
  "roughcountry": { source: "the Rough Country feed", products: 960 },
  "tirediscounter": { source: "the Tire Discounter feed", products: 1500 },
  "aev": { source: "the AEV price list", products: 420 },
  "ctp": { source: "the CTP feed", products: 780 },
  "keyparts": { source: "the Key Parts feed", products: 650 },
  "alpine": { source: "the Alpine feed", products: 310 },
  "meyer": { source: "the Meyer feed", products: 2900 },
  "tdot": { source: "the TDot feed", products: 540 },
  "lowriders": { source: "the Lowriders feed", products: 230 },
  "turn14": { source: "the Turn14 API", products: 6200 },
  "turn14-daily": { source: "the Turn14 API changes of the day", products: 480 },
  "premier-daily": { source: "the Premier daily file", products: 350 },
  "reference-data": { source: "the built-in vendor and competitor tables", products: 0 },
  "orders": { source: "the Magento order export", products: 0 },
  "keystone": { source: "the Keystone API", products: 3900 },
  "keystone-ftp": { source: "the Keystone FTP drop", products: 3950 },
  "metalcloak-scrape": { source: "the MetalCloak web catalog", products: 0 },
  "metalcloak-process": { source: "the scraped MetalCloak pages", products: 270 },
};

// Total sleep per job, in milliseconds, split over the progress lines.
const DELAY_MS = 300;

function sleep(milliseconds) {
  return new Promise((resolve) => setTimeout(resolve, milliseconds));
}

function failureRequested(script) {
  const names = (process.env.EXAMPLE_FAIL || "").split(",").map((name) => name.trim());
  return names.includes(script);
}

async function main() {
  const job = process.argv[2];
  if (!Object.hasOwn(JOBS, job)) {
    console.error(`seed.js: unknown job ${JSON.stringify(job)}; valid jobs: ${Object.keys(JOBS).join(", ")}`);
    return 2;
  }
  // npm sets npm_lifecycle_event to the name of the script it runs.
  const script = process.env.npm_lifecycle_event || job;
  const { source, products } = JOBS[job];
  const rows = products + Math.ceil(products / 25);

  console.log(`${script}: reading ${source}`);
  await sleep(DELAY_MS / 2);
  if (failureRequested(script)) {
    console.error(`${script}: failing on purpose (EXAMPLE_FAIL)`);
    return 1;
  }
  console.log(`${script}: matched ${products} of ${rows} rows against the product table`);
  await sleep(DELAY_MS / 2);
  console.log(`Upserted ${products} products`);
  return 0;
}

main().then((code) => {
  process.exitCode = code;
});
