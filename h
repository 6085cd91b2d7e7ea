HTTP/1.1 429 Too Many Requests
date: Sat, 05 Dec 2026 07:56:45 GMT
content-length: 175
content-type: application/json
x-trace-id: 19c7b72a35dab4d43d85ca7efd5ed073
retry-after: 59
access-control-expose-headers: Retry-After, X-Total-Count, Link, Location, X-Trace-Id
access-control-allow-origin: https://app.example
vary: Origin
x-content-type-options: nosniff
x-frame-options: DENY
referrer-policy: no-referrer
cross-origin-opener-policy: same-origin
cache-control: no-store
content-security-policy: default-src 'none'; frame-ancestors 'none'
traceparent: 00-19c7b72a35dab4d43d85ca7efd5ed073-24aafe4c094a0c91-03

