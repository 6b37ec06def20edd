"""The StaticSite API (staticsite.dev/v1alpha1): what a tenant writes, and what it is told.

`models` is the one source of the schema (`crd` generates the CRD from it); `conditions`
holds the condition types and reasons that clients may switch on.
"""
