/**
 * Writes docs/formats/export.schema.json (JSON Schema draft 2020-12: a `oneOf` of format versions 1 and 2)
 * from the import's zod schema, so the documented format and the reader cannot drift apart.
 * test/hub/import.test.ts checks the committed file equals this output, test/hub/export-v2.test.ts that a
 * version-2 export has the members of its branch. Run: `npx tsx scripts/gen-export-schema.ts`.
 */
import { writeFileSync } from "node:fs";
import { exportJsonSchema } from "../src/hub/import.ts";

const out = "docs/formats/export.schema.json";
writeFileSync(out, `${JSON.stringify(exportJsonSchema(), null, 2)}\n`);
console.log(`wrote ${out}`);
