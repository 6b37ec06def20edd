"""The StaticSite API (v1alpha1) as pydantic models: the one source of the CRD schema.

Every constraint here is enforced twice: by the API server at admission (the
schema generated from these models by ``crd.py``) and by pydantic when the
operator parses a spec. The second check is defence in depth: whatever reaches
``render`` has passed both, so the nginx.conf templates may assume valid input.

The character classes are deliberately narrow. Anything that ends up inside
nginx.conf is validated here first and quoted again when rendered.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from . import rules

GROUP = "staticsite.dev"
VERSION = "v1alpha1"
KIND = "StaticSite"
PLURAL = "staticsites"

# Pinned, unprivileged nginx (listens on 8080, runs as UID 101). Bump deliberately. The
# platform can change it (the chart's sites.nginxImage); a spec that names no image gets it.
DEFAULT_NGINX_IMAGE = "docker.io/nginxinc/nginx-unprivileged:1.28.0-alpine-slim"
# The init container that fetches git and archive content: sh, git, wget, sha256sum, tar.
DEFAULT_FETCHER_IMAGE = "docker.io/alpine/git:2.47.2"
# The init container that renders a fetched site's nginx.conf: the operator's own image (the
# chart passes the image it runs; `make image` builds this tag).
DEFAULT_ROUTES_IMAGE = "staticsite-operator:dev"

# A ConfigMap holds at most 1 MiB; keep headroom for keys and metadata.
MAX_CONTENT_BYTES = 1_000_000

# --- Patterns shared with the CRD schema --------------------------------------------
# RFC 1123 DNS name; a leading "*." wildcard label is allowed for Ingress hosts. The last
# label starts with a letter (no top-level domain is numeric): an IP address is not a host.
DOMAIN_PATTERN = (
    r"^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
)
# A path that could leave the site root once nginx uses it: a "." or ".." segment, a
# segment starting with ".." (the ConfigMap volume's own ..data and ..<timestamp>
# entries), a backslash, or a percent-encoded dot, slash or backslash. Only the part
# before any "?" or "#" is a path. RE2 and Python read it the same way (CEL and the model).
UNSAFE_PATH_PATTERN = r"^[^?#]*(?:(?:^|/)\.(?:/|[?#]|$)|(?:^|/)\.\.|\\|%(?:2[eEfF]|5[cC]))"
UNSAFE_PATH_MESSAGE = ("must not hold '.' or '..' segments, a segment starting with '..', a backslash, "
                       "or a percent-encoded '.', '/' or '\\'")
# An annotation key: a Kubernetes qualified name, [prefix/]name, the prefix a DNS subdomain.
ANNOTATION_KEY_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
ANNOTATION_KEY_LENGTHS = r"^([^/]{1,253}/)?[^/]{1,63}$"  # prefix <= 253, name <= 63
# A file in the site: relative, '/'-separated, no empty, '.' or '..' segments, no segment
# starting with '..' (the ConfigMap volume's own ..data), no backslash or control character,
# and no percent-escape of '.', '/' or '\\' (so it never meets UNSAFE_PATH_PATTERN). Anything
# else real sites hold is allowed: .well-known/, spaces, parentheses, quotes, '%', '[id]'
# (Next.js), '~' (Docusaurus) and non-ASCII names. Written for RE2 and Python alike: no
# lookarounds, so the percent rule is spelled out as the automaton it is.
def _file_path_pattern(also_excluded: str = "") -> str:
    def cls(extra: str) -> str:
        return rf"[^/%\\\x00-\x1f\x7f{extra}{also_excluded}]"
    loop = r"(?:%|2%|5%)*"                        # after '%': more '%', or '2%' / '5%'
    leave = rf"(?:{cls('25')}|2{cls('eEfF')}|5{cls('cC')})"  # anything but 2e 2f 5c
    body = rf"(?:{cls('')}|%{loop}{leave})*(?:%{loop}[25]?)?"
    segment = rf"\.?(?:{cls('.')}{body}|%{loop}(?:{leave}{body}|[25]?))"
    return rf"^{segment}(?:/{segment})*$"


FILE_PATH_PATTERN = _file_path_pattern()
# The 404 page is also a URI inside nginx: no '?' or '#' (they would start a query).
PAGE_PATH_PATTERN = "^/?" + _file_path_pattern("?#")[1:]
# A git or archive subdirectory becomes nginx's root: the conservative set of characters.
SOURCE_PATH_PATTERN = r"^[A-Za-z0-9_@+,=~-][A-Za-z0-9._@+,=~-]*(/[A-Za-z0-9_@+,=~-][A-Za-z0-9._@+,=~-]*)*$"
# A percent-escape of a printable character (%20-%7E, and UTF-8 bytes %80-%FF).
_PCT = r"%(?:[2-6][0-9A-Fa-f]|7[0-9A-Ea-e]|[89A-Fa-f][0-9A-Fa-f])"
# A character of a rule path: RFC 3986 path characters but for those nginx.conf would read
# ('$', quotes, ';', braces, spaces, backslash), '*' and ':' for splats and placeholders,
# printable percent-escapes, and non-ASCII (percent-encoded when rendered).
_RULE_CHAR = rf"(?:[A-Za-z0-9._~@+,=!:*'()-]|{_PCT}|[^\x00-\x7f])"
# A rule path: absolute, no empty segments ('/a//b' could never match), optional trailing '/'.
# The grammar of '*' and ':name' depends on routing.semantics (api/rules.py).
ROUTE_PATTERN = rf"^/({_RULE_CHAR}+(/{_RULE_CHAR}+)*/?)?$"
HEADER_PATH_PATTERN = r"^(https://[A-Za-z0-9.:*_-]+)?" + ROUTE_PATTERN[1:]
# A redirect target: a path (with optional query) or an absolute http(s) URL.
TARGET_PATTERN = r"^(/|https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/|$))([A-Za-z0-9._~@+,=!:/?&%#*'()-]|[^\x00-\x7f])*$"
# A percent-escape of a control character: nginx would decode it inside the site.
CONTROL_ESCAPE_PATTERN = "%(?:[01][0-9A-Fa-f]|7[Ff])"
# A query parameter a rule matches: a name, and a value that is a ':placeholder' or literal.
QUERY_KEY_PATTERN = rf"^([A-Za-z0-9._~!*'()@,+-]|{_PCT})+$"
QUERY_VALUE_PATTERN = rf"^(:[A-Za-z][A-Za-z0-9_.-]*|([A-Za-z0-9._~!*'()@,:/+-]|{_PCT})*)$"
# Remote sources: http(s) only, and no user:password@ in the URL (use secretRef).
# No '$' or parentheses either: container env values expand $(VAR).
REMOTE_URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~!&*+,;=:@%/-]*)?$"
# A branch, tag, full refname or commit SHA (git check-ref-format, conservatively).
GIT_REF_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9._/-]*$"
# A Go-style duration of at least one unit: 30s, 5m, 1h30m.
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
# The probe's path: a site file or redirect there would be shadowed by, or break, it.
HEALTH_PATH = "healthz"
# An HTTP header name (RFC 9110 token), and a value of visible ASCII and spaces.
HEADER_NAME_PATTERN = r"^[A-Za-z0-9!#%&'*+.^_`|~-]+$"
HEADER_VALUE_PATTERN = r"^[\x20-\x7e]*$"
# Header names that nginx or the platform owns; setting them would break serving.
# (Content-Type may be set: it becomes the type nginx sends, never a second header.)
RESERVED_HEADERS = frozenset(
    {"content-length", "transfer-encoding", "connection", "date", "server",
     "location", "etag", "last-modified", "content-encoding", "vary", "accept-ranges"}
)
# A media type, as Content-Type takes it: type/subtype and parameters, no '$' or quotes
# but around a parameter value.
MEDIA_TYPE_PATTERN = (r'^[A-Za-z0-9!#&^_.+-]+/[A-Za-z0-9!#&^_.+-]+'
                      r'( *; *[A-Za-z0-9!#&^_.+-]+=([A-Za-z0-9!#&^_.+-]+|"[A-Za-z0-9 !#&^_.+/=:-]*"))*$')

def confined(what: str, path: str) -> str:
    """`path`, if nginx cannot be made to leave the site root with it; else ValueError."""
    if re.match(UNSAFE_PATH_PATTERN, path):
        raise ValueError(f"{what}: {path!r} {UNSAFE_PATH_MESSAGE}")
    return path


def _confined_file(path: str) -> str:
    return confined("path", path)


def _page(path: str) -> str:
    # '/404.html' is how people write a page: the same file as '404.html'.
    return confined("notFoundPage", path.removeprefix("/"))


Domain = Annotated[str, Field(pattern=DOMAIN_PATTERN, max_length=253)]
FilePath = Annotated[str, Field(pattern=FILE_PATH_PATTERN, max_length=512), AfterValidator(_confined_file)]
PagePath = Annotated[str, Field(pattern=PAGE_PATH_PATTERN, max_length=513), AfterValidator(_page)]
# 200 rewrites; 3xx redirects; 404 and 410 serve `to` with that status, the URL unchanged.
RedirectStatus = Literal[200, 301, 302, 303, 307, 308, 404, 410]
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
LOCAL_STATUSES = (200, 404, 410)  # `to` is a page of this site, served from inside nginx


class _Model(BaseModel):
    """Base: camelCase is written as-is in the API; unknown fields are an error."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class File(_Model):
    """One file of the site: text in `content`, or bytes in base64 in `binaryContent`."""

    path: FilePath = Field(description="Path relative to the site root, e.g. assets/app.css.")
    content: str | None = Field(default=None, description="UTF-8 text.")
    binary_content: str | None = Field(default=None, alias="binaryContent",
                                       description="Bytes, base64-encoded.",
                                       json_schema_extra={"format": "byte"})

    @model_validator(mode="after")
    def _one_body(self) -> File:
        if self.path == HEALTH_PATH:
            raise ValueError(f"files: the path {HEALTH_PATH!r} is reserved for the health probe")
        if (self.content is None) == (self.binary_content is None):
            raise ValueError(f"files[{self.path!r}]: set exactly one of content and binaryContent")
        if self.binary_content is not None:
            try:
                base64.b64decode(self.binary_content, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"files[{self.path!r}].binaryContent is not valid base64") from exc
        return self

    def data(self) -> bytes:
        if self.binary_content is not None:
            return base64.b64decode(self.binary_content)
        return (self.content or "").encode()


class InlineContent(_Model):
    """Files carried in the StaticSite itself, stored in a ConfigMap (about 1 MiB at most)."""

    files: list[File] = Field(
        min_length=1, max_length=5000,
        description="The site's files; paths are unique.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]},
    )

    @field_validator("files")
    @classmethod
    def _unique(cls, files: list[File]) -> list[File]:
        seen: set[str] = set()
        for f in files:
            if f.path in seen:
                raise ValueError(f"files: duplicate path {f.path!r}")
            seen.add(f.path)
        return files

    def paths(self) -> set[str]:
        return {f.path for f in self.files}


class SecretRef(_Model):
    """A key of a Secret in the site's namespace."""

    name: str = Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(default="token", max_length=253, pattern=r"^[-._a-zA-Z0-9]+$",
                     description="The key holding an access token (default: token).")


def duration_seconds(value: str) -> int:
    """'1h30m' -> 5400."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"([0-9]+)([hms])", value))


class GitSource(_Model):
    """A git repository over http(s). The operator resolves `ref` to a commit every `interval`."""

    url: str = Field(pattern=REMOTE_URL_PATTERN, max_length=2048,
                     description="Repository URL (http or https), without credentials.")
    ref: str = Field(default="main", pattern=GIT_REF_PATTERN, max_length=255,
                     description="Branch, tag or commit SHA. A SHA pins the site: setting an older one rolls back.")
    path: str = Field(default="", max_length=512, pattern=r"^$|" + SOURCE_PATH_PATTERN,
                      description="Subdirectory to serve, e.g. public (a generator's output).")
    secret_ref: SecretRef | None = Field(default=None, alias="secretRef",
                                         description="Access token for a private repository.")
    interval: str = Field(default="1m", pattern=DURATION_PATTERN, min_length=2, max_length=16,
                          description="How often to look for a new commit (at least 10s).")

    @field_validator("interval")
    @classmethod
    def _min_interval(cls, value: str) -> str:
        if duration_seconds(value) < 10:
            raise ValueError("interval: at least 10s")
        return value

    def pinned(self) -> bool:
        return re.fullmatch(r"[0-9a-f]{40}", self.ref) is not None


class ArchiveSource(_Model):
    """A .tar.gz/.tgz/.tar build artifact, checked against its SHA-256 before it is served."""

    url: str = Field(pattern=REMOTE_URL_PATTERN, max_length=2048)
    sha256: str = Field(pattern=r"^[a-f0-9]{64}$", description="Lower-case hex SHA-256 of the archive.")
    strip_components: int = Field(default=0, ge=0, le=10, alias="stripComponents",
                                  description="Leading path components to drop, as tar --strip-components.")
    path: str = Field(default="", max_length=512, pattern=r"^$|" + SOURCE_PATH_PATTERN,
                      description="Subdirectory of the archive to serve.")


class Content(_Model):
    """Where the site's files come from: exactly one of inline, git and archive."""

    inline: InlineContent | None = Field(default=None, description="Files carried in the spec (up to ~1 MiB).")
    git: GitSource | None = Field(default=None, description="A git repository, pinned to a commit.")
    archive: ArchiveSource | None = Field(default=None, description="A build artifact with its checksum.")

    @model_validator(mode="after")
    def _one_source(self) -> Content:
        if sum(x is not None for x in (self.inline, self.git, self.archive)) != 1:
            raise ValueError("content: exactly one source is required: inline, git or archive")
        return self


class Redirect(_Model):
    """A `_redirects` line as a field: `from` may hold `*` (captured as `:splat`) and `:name`
    placeholders, in the grammar of routing.semantics (docs/api.md, docs/compat.md)."""

    from_: str = Field(alias="from", pattern=ROUTE_PATTERN, max_length=512,
                       description="Request path pattern, e.g. /old/* or /blog/:year/:slug.")
    to: str = Field(pattern=TARGET_PATTERN, max_length=1024,
                    description="Target path or http(s) URL; may use :splat and the placeholders of `from` "
                                "and `query`.")
    status: RedirectStatus = Field(default=301, description="301, 302, 303, 307, 308; 200 to rewrite; 404 or 410 "
                                                            "to serve `to` with that status.")
    force: bool = Field(default=False, description="Netlify's `!`: apply even when a file exists at the path "
                                                   "(rules are shadowed by files otherwise). Cloudflare rules "
                                                   "always apply.")
    query: dict[Annotated[str, Field(pattern=QUERY_KEY_PATTERN, max_length=64)],
                Annotated[str, Field(pattern=QUERY_VALUE_PATTERN, max_length=256)]] = Field(
        default_factory=dict,
        description="Query parameters the request must have: a value (page: news) or a placeholder (id: ':id') "
                    "that `to` may use. Other parameters may be present.",
        json_schema_extra={"maxProperties": 10},
    )

    @model_validator(mode="after")
    def _consistent(self) -> Redirect:
        confined("from", self.from_)
        confined("to", self.to)
        if self.from_.rstrip("/") == f"/{HEALTH_PATH}":
            raise ValueError(f"from: /{HEALTH_PATH} is reserved for the health probe")
        if self.status in LOCAL_STATUSES:
            if not self.to.startswith("/"):
                raise ValueError(f"to: a {self.status} rule must target a path on this site, not a URL")
            if re.search(CONTROL_ESCAPE_PATTERN, self.to):
                raise ValueError(f"to: a {self.status} rule's target must not hold an escaped control character")
        if self.status in (404, 410) and re.search(":[A-Za-z]", self.to):
            raise ValueError(f"to: a {self.status} rule serves one page: its target cannot use placeholders")
        return self


def check_redirect(rule: Redirect, semantics: rules.Semantics) -> rules.Pattern:
    """What the rule means under `semantics`; ValueError (naming from, to or query) if the host
    would not accept it."""
    try:
        pattern = rules.parse(rule.from_, semantics, "redirect")
    except ValueError as exc:
        raise ValueError(f"from: {exc}") from None
    names = pattern.names
    for key, value in rule.query.items():
        if value.startswith(":"):
            if value[1:] in names:
                raise ValueError(f"query.{key}: the placeholder {value} is already captured")
            names.append(value[1:])
    try:
        rules.substitutions(rule.to.split("://", 1)[-1].partition("/")[2] if "://" in rule.to else rule.to,
                            names, semantics)
    except ValueError as exc:
        raise ValueError(f"to: {exc}") from None
    return pattern


def _is_content_type(name: str) -> bool:
    return name.lower() == "content-type"


class HeaderRule(_Model):
    """Response headers for paths matching `path`, in the grammar of routing.semantics: a `*`
    matches any characters (`/assets/*`, `/*.js`), a `:name` a segment."""

    path: str = Field(pattern=HEADER_PATH_PATTERN, max_length=512)
    set: dict[Annotated[str, Field(pattern=HEADER_NAME_PATTERN, max_length=128)],
              Annotated[str, Field(pattern=HEADER_VALUE_PATTERN, max_length=4096)]] = Field(
        description="Header name -> value. An empty value removes the header (a default one, or one an "
                    "earlier rule set). Content-Type sets the type of the files served.",
        json_schema_extra={"minProperties": 1, "maxProperties": 32},
    )

    @field_validator("path")
    @classmethod
    def _confined(cls, value: str) -> str:
        return confined("path", value)

    @field_validator("set")
    @classmethod
    def _not_reserved(cls, value: dict[str, str]) -> dict[str, str]:
        if bad := sorted(n for n in value if n.lower() in RESERVED_HEADERS):
            raise ValueError(f"set: header(s) managed by the server cannot be set: {', '.join(bad)}")
        for name, media in value.items():
            if _is_content_type(name) and not re.match(MEDIA_TYPE_PATTERN, media):
                raise ValueError(f"set.{name}: {media!r} is not a media type such as application/json")
        return value


def check_header_rule(rule: HeaderRule, semantics: rules.Semantics) -> rules.Pattern:
    """What the rule's path means under `semantics`; ValueError if the host would not accept it."""
    try:
        pattern = rules.parse(rule.path, semantics, "header")
    except ValueError as exc:
        raise ValueError(f"path: {exc}") from None
    if pattern.host is not None and any(_is_content_type(n) for n in rule.set):
        raise ValueError("set: Content-Type cannot depend on the host; give it in a rule without one")
    return pattern


class Routing(_Model):
    semantics: rules.Semantics = Field(
        default="netlify",
        description="Whose behaviour to follow: netlify (files shadow unforced rules, default 301) or "
                    "cloudflare (rules always apply, /x.html -> 308 /x, nearest 404.html, SPA without one). "
                    "docs/compat.md lists every difference.")
    spa: bool = Field(default=False, description="Serve /index.html with 200 for unknown paths.")
    not_found_page: PagePath | None = Field(
        default=None, alias="notFoundPage",
        description="Page served with status 404, e.g. 404.html or /errors/404.html. Default: 404.html.")
    clean_urls: bool = Field(default=False, alias="cleanUrls",
                             description="/about serves about.html; /about.html redirects to /about.")
    trailing_slash: Literal["ignore", "add", "remove", "auto"] = Field(
        default="ignore", alias="trailingSlash",
        description="ignore: serve both; add: redirect /a to /a/, remove: /a/ to /a, auto: to the form the "
                    "files imply (a/index.html: /a/; a.html: /a). Only when the target exists.")
    redirects: list[Redirect] = Field(default_factory=list, max_length=1000,
                                      description="Evaluated in order; the first match wins. Before those of "
                                                  "a _redirects file in the content.")
    headers: list[HeaderRule] = Field(default_factory=list, max_length=100,
                                      description="All matching rules apply (netlify: for each header the last "
                                                  "one wins; cloudflare: values are joined). They take "
                                                  "precedence over a _headers file in the content.")

    @field_validator("redirects", "headers")
    @classmethod
    def _rules_mean_something(cls, value: list[Any], info: ValidationInfo) -> list[Any]:
        semantics = info.data.get("semantics", "netlify")
        check = check_redirect if info.field_name == "redirects" else check_header_rule
        for i, rule in enumerate(value):
            try:
                check(rule, semantics)
            except ValueError as exc:
                raise ValueError(f"{info.field_name}[{i}].{exc}") from None
        return value

    @model_validator(mode="after")
    def _cloudflare_urls(self) -> Routing:
        if self.semantics == "cloudflare" and (self.clean_urls or self.trailing_slash != "ignore"):
            raise ValueError("cleanUrls, trailingSlash: with semantics: cloudflare, Cloudflare's own URL handling "
                             "applies (/a.html -> 308 /a, /a -> 308 /a/ for a directory); leave them unset")
        return self


class Tls(_Model):
    secret_name: str = Field(alias="secretName", pattern=DOMAIN_PATTERN.replace(r"(\*\.)?", ""), max_length=253)


class Ingress(_Model):
    class_name: str | None = Field(default=None, alias="className", max_length=253,
                                   pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    annotations: dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        description="Copied to the Ingress when the platform's policy allows each key (see docs/security.md).",
        json_schema_extra={"maxProperties": 64})
    tls: Tls | None = None

    @field_validator("annotations")
    @classmethod
    def _qualified_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not (re.match(ANNOTATION_KEY_PATTERN, key) and re.match(ANNOTATION_KEY_LENGTHS, key)):
                raise ValueError(f"annotations: {key!r} is not a valid annotation key ([prefix/]name, the prefix "
                                 "a DNS subdomain of at most 253 characters, the name at most 63 characters)")
        return value


# A Kubernetes resource quantity such as 100m, 64Mi or 2.
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|E|Ei)?$"
Quantity = Annotated[
    Annotated[int, Field(ge=0)] | Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN)],
    Field(json_schema_extra={"x-kubernetes-int-or-string": True}),
]
ResourceName = Annotated[str, Field(pattern=r"^(cpu|memory|ephemeral-storage)$")]


class Resources(_Model):
    """Container requests and limits, as in a Pod spec."""

    requests: dict[ResourceName, Quantity] = Field(default_factory=dict)
    limits: dict[ResourceName, Quantity] = Field(default_factory=dict)


class Nginx(_Model):
    image: str | None = Field(default=None, max_length=512, pattern=r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$",
                              description="An unprivileged nginx image that listens on 8080. "
                                          "Default: the platform's default image.")
    # Measured with `make bench-serve` (bench/README.md, "Serving"; nginx 1.22, 2 workers).
    # Memory, master and workers together (PSS) at 100 requests/s: 3.3-5.5 MiB for typical
    # sites, 11.0 MiB with 1000 redirects; 14.2 MiB with the most routing a spec could hold
    # (1000 redirects, 100 header rules of 32 headers; measured before _redirects files,
    # whose rules count against the same ConfigMap size); 1000 open connections add under
    # 2 MiB per worker. The request covers every spec; the limit is 4x that, and leaves the
    # rest to the page cache of the files served (reclaimed before nginx would be killed).
    # CPU at 100 requests/s: 9-11 millicores for every site shape measured, 1000 redirects
    # included, 26 with on-the-fly gzip of large files: the request is a site at about
    # 100 requests/s, and no CPU limit (it would throttle bursts).
    resources: Resources = Field(default_factory=lambda: Resources(
        requests={"cpu": "10m", "memory": "16Mi"}, limits={"memory": "64Mi"}))


# --- The serving tier and Gateway API routing (docs/shared-tier.md) ------------------
# A DNS subdomain (StaticSitePool names, Gateway names) and a DNS label (namespaces).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Serving(_Model):
    """dedicated: the site's own nginx Deployment (the default). shared: served by the
    platform's StaticSitePool `pool`, with thousands of other sites, from one nginx."""

    tier: Literal["dedicated", "shared"] = Field(default="dedicated",
                                                 description="dedicated (own pods) or shared (a pool's pods).")
    pool: str | None = Field(default=None, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN,
                             description="The StaticSitePool serving the site (tier: shared).")

    @model_validator(mode="after")
    def _pool_iff_shared(self) -> Serving:
        if (self.tier == "shared") != (self.pool is not None):
            raise ValueError("serving.pool: set it exactly when serving.tier is shared")
        return self


class ParentRef(_Model):
    """A Gateway (or a listener of it, sectionName) the site's HTTPRoute attaches to."""

    group: Literal["gateway.networking.k8s.io"] = "gateway.networking.k8s.io"
    kind: Literal["Gateway"] = "Gateway"
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)
    namespace: str | None = Field(default=None, max_length=63, pattern=DNS_LABEL_PATTERN,
                                  description="The Gateway's namespace; default: the site's.")
    section_name: str | None = Field(default=None, alias="sectionName", max_length=253,
                                     pattern=DNS_SUBDOMAIN_PATTERN, description="A listener of the Gateway.")
    port: int | None = Field(default=None, ge=1, le=65535)


class Gateway(_Model):
    """Route the site with a Gateway API HTTPRoute (instead of an Ingress)."""

    parent_refs: list[ParentRef] = Field(alias="parentRefs", min_length=1, max_length=32,
                                         description="The Gateways the HTTPRoute attaches to.")
    annotations: dict[Annotated[str, Field(max_length=317)], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        description="Copied to the HTTPRoute when the platform's policy allows each key, as Ingress annotations.",
        json_schema_extra={"maxProperties": 64})

    @field_validator("annotations")
    @classmethod
    def _qualified_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return Ingress._qualified_keys(value)


class StaticSiteSpec(_Model):
    content: Content
    replicas: int = Field(default=1, ge=0, le=100)
    domains: list[Domain] = Field(default_factory=list, max_length=50,
                                  description="Ingress hosts; none means no Ingress.",
                                  json_schema_extra={"x-kubernetes-list-type": "set"})
    ingress: Ingress = Field(default_factory=Ingress)
    routing: Routing = Field(default_factory=Routing)
    nginx: Nginx = Field(default_factory=Nginx)
    serving: Serving = Field(default_factory=Serving,
                             description="dedicated (the default) or shared with a StaticSitePool.")
    gateway: Gateway | None = Field(default=None,
                                    description="Route with a Gateway API HTTPRoute instead of an Ingress.")

    @model_validator(mode="after")
    def _cross_field(self) -> StaticSiteSpec:
        inline = self.content.inline
        page = self.routing.not_found_page
        if inline is not None and page is not None and page not in inline.paths():
            raise ValueError(f"routing.notFoundPage: {page!r} is not a file in content.inline")
        if self.ingress.tls is not None and not self.domains:
            raise ValueError("ingress.tls: needs at least one entry in domains")
        if self.gateway is not None and not self.domains:
            raise ValueError("gateway: needs at least one entry in domains (an HTTPRoute without hostnames "
                             "would take every host of its Gateway)")
        if self.serving.tier == "shared":
            _shared_rules(self)
        return self


def _shared_rules(spec: StaticSiteSpec) -> None:
    """What the shared tier cannot do (yet): each is refused with the field that asks for it."""
    if spec.content.inline is None:
        raise ValueError("serving.tier: shared serves content.inline only; git and archive sources are served "
                         "by the dedicated tier")
    if not spec.domains:
        raise ValueError("serving.tier: shared needs at least one entry in domains (the pool routes by Host)")
    if spec.ingress.tls is not None:
        raise ValueError("ingress.tls: not available on the shared tier (TLS is the platform's, at its "
                         "ingress controller or Gateway)")


# Cross-field rules the API server checks with CEL (x-kubernetes-validations). They
# mirror the model validators above, so bad input is rejected before it is stored.
CEL_RULES: dict[str, list[dict[str, Any]]] = {
    "StaticSiteSpec": [
        {
            "rule": "!has(self.routing) || !has(self.routing.notFoundPage) || "
                    f"!self.routing.notFoundPage.matches({UNSAFE_PATH_PATTERN!r})",
            "message": f"routing.notFoundPage {UNSAFE_PATH_MESSAGE}",
            "fieldPath": ".routing.notFoundPage",
        },
        {
            "rule": "!has(self.routing) || !has(self.routing.notFoundPage) || !has(self.content.inline) || "
                    "self.content.inline.files.exists(f, f.path == (self.routing.notFoundPage.startsWith('/') ? "
                    "self.routing.notFoundPage.substring(1) : self.routing.notFoundPage))",
            "message": "routing.notFoundPage must name a file in content.inline.files",
            "fieldPath": ".routing.notFoundPage",
        },
        {
            "rule": "!has(self.ingress) || !has(self.ingress.tls) || (has(self.domains) && size(self.domains) > 0)",
            "message": "ingress.tls needs at least one entry in domains",
            "fieldPath": ".ingress.tls",
        },
        {
            "rule": "!has(self.gateway) || (has(self.domains) && size(self.domains) > 0)",
            "message": "gateway needs at least one entry in domains",
            "fieldPath": ".gateway",
        },
        {
            "rule": "!has(self.serving) || !has(self.serving.tier) || self.serving.tier != 'shared' || "
                    "(has(self.content.inline) && has(self.domains) && size(self.domains) > 0 && "
                    "(!has(self.ingress) || !has(self.ingress.tls)))",
            "message": "serving.tier shared needs content.inline, at least one entry in domains, and no ingress.tls",
            "fieldPath": ".serving.tier",
        },
    ],
    "Serving": [
        {"rule": "(has(self.tier) && self.tier == 'shared') == has(self.pool)",
         "message": "serving.pool: set it exactly when serving.tier is shared", "fieldPath": ".pool"},
    ],
    "Gateway": [
        {"rule": "!has(self.annotations) || self.annotations.all(k, k.matches(" + repr(ANNOTATION_KEY_PATTERN)
                 + ") && k.matches(" + repr(ANNOTATION_KEY_LENGTHS) + "))",
         "message": "annotations: every key must be a qualified name ([prefix/]name, the prefix a DNS subdomain "
                    "of at most 253 characters, the name at most 63)",
         "fieldPath": ".annotations"},
    ],
    "Ingress": [
        {"rule": "!has(self.annotations) || self.annotations.all(k, k.matches(" + repr(ANNOTATION_KEY_PATTERN)
                 + ") && k.matches(" + repr(ANNOTATION_KEY_LENGTHS) + "))",
         "message": "annotations: every key must be a qualified name ([prefix/]name, the prefix a DNS subdomain "
                    "of at most 253 characters, the name at most 63)",
         "fieldPath": ".annotations"},
    ],
    "Content": [
        {"rule": "(has(self.inline) ? 1 : 0) + (has(self.git) ? 1 : 0) + (has(self.archive) ? 1 : 0) == 1",
         "message": "content needs exactly one source: inline, git or archive"},
    ],
    # A file's path needs no CEL rule here: FILE_PATH_PATTERN (checked by the schema, which
    # is cheaper than CEL over 5000 files) already refuses what UNSAFE_PATH_PATTERN does.
    "File": [
        {"rule": "has(self.content) != has(self.binaryContent)",
         "message": "set exactly one of content and binaryContent"},
        {"rule": "self.path != 'healthz'", "message": "the path healthz is reserved for the health probe",
         "fieldPath": ".path"},
    ],
    "GitSource": [
        {"rule": "!has(self.interval) || duration(self.interval) >= duration('10s')",
         "message": "interval must be at least 10s", "fieldPath": ".interval"},
    ],
    "Redirect": [
        {"rule": f"!self.from.matches({UNSAFE_PATH_PATTERN!r})",
         "message": f"from {UNSAFE_PATH_MESSAGE}", "fieldPath": ".from"},
        {"rule": f"!self.to.matches({UNSAFE_PATH_PATTERN!r})",
         "message": f"to {UNSAFE_PATH_MESSAGE}", "fieldPath": ".to"},
        {"rule": f"!has(self.status) || !(self.status in {list(LOCAL_STATUSES)}) || self.to.startsWith('/')",
         "message": "a 200, 404 or 410 rule must target a path on this site, not a URL", "fieldPath": ".to"},
        {"rule": f"!has(self.status) || !(self.status in {list(LOCAL_STATUSES)}) || "
                 f"!self.to.matches({CONTROL_ESCAPE_PATTERN!r})",
         "message": "a 200, 404 or 410 rule's target must not hold an escaped control character",
         "fieldPath": ".to"},
        {"rule": "!has(self.status) || !(self.status in [404, 410]) || !self.to.matches(':[A-Za-z]')",
         "message": "a 404 or 410 rule serves one page: its target cannot use placeholders", "fieldPath": ".to"},
        {"rule": "self.from != '/healthz' && self.from != '/healthz/'",
         "message": "/healthz is reserved for the health probe", "fieldPath": ".from"},
        # The values have a schema pattern; map keys can only be checked here.
        {"rule": f"!has(self.query) || self.query.all(k, k.matches({QUERY_KEY_PATTERN!r}))",
         "message": "query: parameter names are URL characters (letters, digits, ._~!*'()@,+- and %XX)",
         "fieldPath": ".query"},
    ],
    # The grammar of paths depends on the semantics (api/rules.py): what CEL can check cheaply
    # here; the operator checks the rest (placeholders `to` uses) and reports InvalidSpec.
    "Routing": [
        {"rule": "!has(self.semantics) || self.semantics != 'cloudflare' || "
                 "((!has(self.cleanUrls) || !self.cleanUrls) && (!has(self.trailingSlash) || "
                 "self.trailingSlash == 'ignore'))",
         "message": "with semantics: cloudflare, Cloudflare's own URL handling applies: leave cleanUrls and "
                    "trailingSlash unset", "fieldPath": ".semantics"},
        {"rule": "(has(self.semantics) && self.semantics == 'cloudflare') || !has(self.redirects) || "
                 "self.redirects.all(r, !r.from.substring(0, size(r.from) - 1).contains('*'))",
         "message": "'*' is only allowed at the end of from (Netlify); semantics: cloudflare allows it anywhere",
         "fieldPath": ".redirects"},
        {"rule": "!has(self.semantics) || self.semantics != 'cloudflare' || !has(self.redirects) || "
                 "self.redirects.all(r, r.from.indexOf('*') == r.from.lastIndexOf('*'))",
         "message": "only one '*' is allowed in from (Cloudflare)", "fieldPath": ".redirects"},
        {"rule": "(has(self.semantics) && self.semantics == 'cloudflare') || !has(self.headers) || "
                 "self.headers.all(h, h.path.startsWith('/'))",
         "message": "a header rule naming a host (https://...) needs semantics: cloudflare",
         "fieldPath": ".headers"},
        {"rule": "!has(self.semantics) || self.semantics != 'cloudflare' || !has(self.headers) || "
                 "self.headers.all(h, h.path.indexOf('*') == h.path.lastIndexOf('*'))",
         "message": "only one '*' is allowed in a header rule's path (Cloudflare)", "fieldPath": ".headers"},
    ],
    "HeaderRule": [
        {"rule": f"!self.path.matches({UNSAFE_PATH_PATTERN!r})",
         "message": f"path {UNSAFE_PATH_MESSAGE}", "fieldPath": ".path"},
        {"rule": 'self.set.all(k, k.matches("' + HEADER_NAME_PATTERN + '"))',
         "message": "set: header names must be HTTP tokens (letters, digits and !#%&'*+.^_`|~-)",
         "fieldPath": ".set"},
        {"rule": "self.set.all(k, !(k.lowerAscii() in " + repr(sorted(RESERVED_HEADERS)).replace("'", '"') + "))",
         "message": "set: a header managed by the server cannot be set "
                    "(" + ", ".join(sorted(RESERVED_HEADERS)) + ")",
         "fieldPath": ".set"},
        # Content-Type's value is a media type (checked by the operator: a regex over every
        # value would cost 16 times the CRD's CEL budget; the schema keeps values printable,
        # and nginx.conf quotes them).
    ],
}
"""CEL rules keyed by the name of the model whose schema node they attach to."""


class Condition(_Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""
    last_transition_time: str = Field(alias="lastTransitionTime")
    observed_generation: int | None = Field(default=None, alias="observedGeneration")


class StaticSiteStatus(_Model):
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    conditions: list[Condition] = Field(default_factory=list)
    url: str | None = None
    replicas: int | None = None
    ready_replicas: int | None = Field(default=None, alias="readyReplicas")
    content_hash: str | None = Field(default=None, alias="contentHash")
    revision: str | None = Field(default=None, description="The git commit being served (git sources).")
    selector: str | None = Field(default=None, description="Pod label selector, for the scale subresource.")
    pool_revision: str | None = Field(default=None, alias="poolRevision",
                                      description="The revision every replica of the pool serves (shared tier).")
