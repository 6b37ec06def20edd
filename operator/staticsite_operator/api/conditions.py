"""Condition types and reasons, in one place (Kubernetes API conventions).

`Ready` is the summary a user waits on; `Progressing` is True while a rollout is
under way; `Degraded` is True when the operator cannot converge and says why.
"""

from __future__ import annotations

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

# Reasons (CamelCase, stable: clients may switch on them).
AVAILABLE = "Available"                    # Ready=True: all replicas run the current config
ROLLING_OUT = "RollingOut"                 # Progressing=True
ROLLOUT_COMPLETE = "RolloutComplete"       # Progressing=False
SCALED_TO_ZERO = "ScaledToZero"            # Ready=True with replicas: 0
WAITING_FOR_REPLICAS = "WaitingForReplicas"
RECONCILED = "Reconciled"                  # Degraded=False
CONTENT_TOO_LARGE = "ContentTooLarge"      # Degraded=True: inline content exceeds a ConfigMap
INVALID_SPEC = "InvalidSpec"               # Degraded=True: passed admission, failed the operator's checks
NAME_CONFLICT = "NameConflict"             # Degraded=True: a child's name is taken by an object we do not own
APPLY_FAILED = "ApplyFailed"               # Degraded=True: the API server rejected a child
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"  # Degraded=True: the Deployment stopped progressing
ALLOCATION_FAILED = "AllocationFailed"     # Degraded=True: the cluster has no Service address left
GIT_RESOLVE_FAILED = "GitResolveFailed"    # Degraded=True: ls-remote failed; the last revision keeps serving
SECRET_UNAVAILABLE = "SecretUnavailable"  # noqa: S105 - Degraded=True: the token Secret is missing or not readable
NOT_RESOLVED = "Resolving"                 # Ready=False: a git ref has not been resolved yet
CHECKSUM_MISMATCH = "ChecksumMismatch"     # Degraded=True: the archive's SHA-256 differs (init exit 42)
FETCH_FAILED = "FetchFailed"               # Degraded=True: the init container could not fetch the content
REVISION_NOT_FOUND = "RevisionNotFound"    # Degraded=True: the pinned commit is not on the server (init exit 43)
AUTHENTICATION_FAILED = "AuthenticationFailed"  # Degraded=True: the server refused the token (init exit 44)
ROUTING_FAILED = "RoutingFailed"           # Degraded=True: a fetched site's nginx.conf could not be made or checked
ROUTING_FILE_INVALID = "RoutingFileInvalid"  # Degraded=True: lines of _redirects/_headers skipped; the site serves

# The platform's policy (core.policy): a spec that breaks it is not applied at all; the
# site keeps what it served before. Admission refuses the same specs when the chart's
# ValidatingAdmissionPolicy is installed.
ANNOTATION_NOT_ALLOWED = "AnnotationNotAllowed"    # an Ingress annotation key the policy refuses
IMAGE_NOT_ALLOWED = "ImageNotAllowed"              # spec.nginx.image is not an allowed image
INGRESS_CLASS_NOT_ALLOWED = "IngressClassNotAllowed"
LIMIT_EXCEEDED = "LimitExceeded"                   # replicas or resources above the platform's bounds
SOURCE_NOT_ALLOWED = "SourceNotAllowed"            # a git or archive host the operator may not contact
# Domains: the site is served without the host, and says why.
DOMAIN_NOT_ALLOWED = "DomainNotAllowed"            # outside the namespace's allowance
DOMAIN_CONFLICT = "DomainConflict"                 # claimed earlier by another StaticSite
