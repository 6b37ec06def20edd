"""The `staticsite` command (and `kubectl staticsite`): a client of the StaticSite API for the
people who build sites. main.py parses and prints; pack.py, netlify.py and site.py are pure;
cluster.py is the one module here that talks to the API; preview.py runs a local nginx."""
