"""The pool agent: serves a StaticSitePool's shared sites from one nginx, in each pool pod.

`python -m staticsite_operator.agent` runs in the pool's pods (the operator's image with
nginx added: the Dockerfile's `pool` target). It is one container, and nginx is its
child: the agent must run `nginx -t` on each new configuration and signal the master to
reload, so both need the nginx binary, the same files and the same process namespace; a
sidecar would need `shareProcessNamespace` and nginx in both images for the same result.

    watch.py    lists and watches the pool's entry ConfigMaps (one per site revision)
    entries.py  validates an entry again (the operator's models) and writes its files
    disk.py     the data directory: revision directories, configuration generations
    sync.py     a batch: new server blocks, `nginx -t`, isolation of a refused site, one reload
    nginx.py    the nginx child process: start, test, reload, the generation it serves
    report.py   what this pod serves, or refused, per site: one ConfigMap, written on change
    metrics.py  sites, reloads and their duration, bytes on disk

Atomic per site: a revision's files are complete in their own directory before a
configuration names it, and a graceful reload switches old workers to new ones, so a
request sees one revision, never a mix. Isolated: a site whose server block fails
`nginx -t` keeps its last good block, is reported as rejected, and the others go on.
Debounced: events within `debounce` seconds (at most `max_delay` after the first)
become one reload. The agent needs to read ConfigMaps in the pool's namespace and to
write its own report there, nothing else; no tenant Secret reaches it.
"""
