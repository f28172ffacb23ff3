// The operator's console. Every number on the page comes from the router's own routing core,
// compiled to wasm (./pkg, built by `make preview`): this file loads it and starts the panels
// (./js/*.js), which only read forms and draw what the core returns. No routing arithmetic
// happens in JavaScript.
import { $ } from "./js/dom.js";
import { store } from "./js/store.js";
import { initConfig } from "./js/config-panel.js";
import { initWho } from "./js/who.js";
import { initMoves } from "./js/moves.js";
import { initDistribution } from "./js/distribution.js";
import { initPlan } from "./js/plan.js";
import { initBreaker } from "./js/breaker.js";
import { initLive } from "./js/live.js";

function fail(e) {
  const box = $("fatal");
  box.hidden = false;
  box.textContent = `The routing core (WebAssembly) could not be loaded: ${e?.message ?? e}. Every number on this page comes from it, so nothing can be shown. Check that the preview was built (make preview → www/pkg) and that the server sends .wasm files as application/wasm; then reload.`;
  $("status").textContent = "failed to load the routing core";
  document.body.dataset.ready = "failed";
  for (const b of document.querySelectorAll("main button, main input, main select, main textarea")) b.disabled = true;
}

async function main() {
  let core;
  try {
    core = await import("./pkg/cmo_edge_router.js");
    await core.default();
  } catch (e) {
    fail(e);
    return;
  }
  $("version").textContent = core.version();
  store.set({ vars: { LIGHTRAG_INTEGRATION_ENABLED: "true", LIGHTRAG_ROLLOUT_PERCENTAGE: "10" } }, "init");
  initConfig(core);
  initWho(core);
  initMoves(core);
  initDistribution(core);
  initPlan(core);
  initBreaker(core);
  initLive(core);
  $("status").textContent = "ready";
  document.body.dataset.ready = "true";
}

main();
