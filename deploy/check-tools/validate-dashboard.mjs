// Validates Grafana dashboard JSON files against the dashboard schema that @grafana/schema
// ships. The package ships TypeScript types, not a JSON schema: the schema is generated
// from its `Dashboard` type (ts-json-schema-generator; interfaces are closed, so an unknown
// or misspelt field is an error too) and ajv checks each file against it.
//
//   node validate-dashboard.mjs FILE...     exit 0 when every file is valid, 1 otherwise
//   node validate-dashboard.mjs --print-schema
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

import Ajv from "ajv";
import { createGenerator } from "ts-json-schema-generator";

const require = createRequire(import.meta.url);
const packageDir = dirname(require.resolve("@grafana/schema/package.json"));
const { version } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"));

function dashboardSchema() {
  return createGenerator({
    path: join(packageDir, "dist/types/veneer/dashboard.types.d.ts"),
    type: "Dashboard",
    skipTypeCheck: true,
    // Inline every type: the package's common and dashboard types both define a
    // DataSourceRef, which named definitions cannot hold apart.
    expose: "none",
  }).createSchema("Dashboard");
}

const args = process.argv.slice(2);
if (args.length === 1 && args[0] === "--print-schema") {
  process.stdout.write(`${JSON.stringify(dashboardSchema(), null, 2)}\n`);
  process.exit(0);
}
if (args.length === 0) {
  console.error("usage: node validate-dashboard.mjs FILE... | --print-schema");
  process.exit(2);
}

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(dashboardSchema());
let failed = 0;
for (const file of args) {
  let dashboard;
  try {
    dashboard = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    console.error(`${file}: not JSON: ${error.message}`);
    failed += 1;
    continue;
  }
  if (validate(dashboard)) {
    console.log(`${file}: valid against the Dashboard type of @grafana/schema ${version}`);
  } else {
    failed += 1;
    console.error(`${file}: INVALID against the Dashboard type of @grafana/schema ${version}:`);
    for (const error of validate.errors) {
      const extra = error.params && Object.keys(error.params).length ? ` ${JSON.stringify(error.params)}` : "";
      console.error(`  ${error.instancePath || "/"} ${error.message}${extra}`);
    }
  }
}
process.exit(failed === 0 ? 0 : 1);
