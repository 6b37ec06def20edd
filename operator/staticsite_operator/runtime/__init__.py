"""The controller runtime: what turns kopf's watches into a level-based controller.

kopf lists and watches (its informers); everything between a watch event and a call of
the core's reconcile lives here:

- `reflector`: kopf's watch streams run straight into the cache, with the barrier "every
  kind listed" and a sweep of what a re-listing no longer holds;
- `cache`: what the watches saw, as compact snapshots, plus the read-your-writes memory
  that keeps watch lag from looking like drift (the core's `View`);
- `workqueue`: a coalescing, per-key serial queue with exponential backoff, as client-go's;
- `settings`: kopf's settings for a quiet operator (server-side label selectors, no
  diff-base annotations, no peering writes);
- `metrics`: the Prometheus series;
- `leader`: leader election on a Lease, the gate that holds a standby's reconciles, and
  the fence that stops a former leader's writes;
- `health`: the liveness and readiness endpoints, read from the reflectors and the election.

controller-runtime keeps the same pieces in `pkg/cache`, `pkg/internal/controller` and
`pkg/reconcile`; kube-rs in `kube-runtime/src/{reflector,scheduler,controller}`.
"""
