// PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
// Nagarakatte, ASPLOS 2010): random distinct thread priorities, the highest
// runnable priority runs, and at each of d-1 change points the running
// thread drops below every initial priority. A bug of depth d is found with
// probability at least 1/(n k^(d-1)) per run. Here the change points are
// counted per class of scheduling point (src/sched/strategies/common.ts).

import { C_CLS_SEEN, C_CP_CLASS, C_DEPTH, C_NEXT_CP, F_CP, T_PRIO, T_WORDS } from '../region.js';
import type { Strategy } from '../strategy.js';
import { CP_CLASS_OF_KIND, drawSetup } from './common.js';

export const pct: Strategy = {
  name: 'pct',
  id: 2,
  init(s, parts, p) {
    const perm = drawSetup(s, parts, p);
    return perm[perm.length - 1]; // the highest priority
  },
  choose(s, me, cand, n, kind) {
    const { ctl, f, th } = s;
    // At the i-th change point the running thread drops to priority d-1-i
    // (below every initial priority); then the highest-priority runnable runs.
    // Change points are counted per class of scheduling point, over choice
    // steps only (more than one runnable thread): change point j fires at the
    // F_CP[j]-th choice step of class C_CP_CLASS[j] (see drawSetup).
    const cls = n > 1 ? (CP_CLASS_OF_KIND[kind] ?? -1) : -1;
    if (cls >= 0) {
      const depth = ctl[C_DEPTH];
      const seen = ++ctl[C_CLS_SEEN + cls];
      for (let j = 0; j < depth - 1; j++) {
        if (ctl[C_CP_CLASS + j] !== cls || f[F_CP + j] !== seen) continue;
        th[me * T_WORDS + T_PRIO] = depth - 1 - ctl[C_NEXT_CP];
        ctl[C_NEXT_CP]++;
      }
    }
    let best = cand[0];
    for (let i = 1; i < n; i++) if (th[cand[i] * T_WORDS + T_PRIO] > th[best * T_WORDS + T_PRIO]) best = cand[i];
    return best;
  },
};
