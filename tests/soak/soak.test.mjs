// The short soak (`make test-soak`, a layer of `make test`): the same phases as `make soak`
// compressed to well under a minute and ~1,000 requests. Each check of the soak (tests/soak/soak.mjs)
// is a subtest, so a failure names what broke; the report table is printed either way.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runSoak } from "./soak.mjs";

test("short soak: faults, fallbacks, breaker, cut streams, KV budget", async (t) => {
  const { checks, report } = await runSoak("short");
  console.log(report);
  for (const c of checks) {
    await t.test(c.name, () => assert.ok(c.ok, c.detail));
  }
});
