// The console's shared inputs: the configuration (variables, as the worker reads them) and the
// live state the decisions see. Panels subscribe; the Config and Live panels write.

const listeners = new Set();

export const store = {
  /** Variable name → value (strings as in wrangler [vars], or JSON values). */
  vars: {},
  /** {lightrag_breaker, rollback_active, quality_gate_closed}. */
  state: { lightrag_breaker: "closed", rollback_active: false, quality_gate_closed: false },
  /** Who changed it last ("config", "live", …), so a panel does not echo its own edit. */
  source: "init",

  set(patch, source) {
    Object.assign(this, patch);
    this.source = source;
    for (const f of listeners) f(this);
  },

  subscribe(f) {
    listeners.add(f);
  },
};
