"""Access control, audit trail and TLS settings of the runtime (no HTTP code here).

``roles`` says which role each ``/api/v1`` route needs, ``keys`` stores hashed API keys in the
metadata database, ``sources`` loads the keys the operator mounts from Secrets, ``audit`` writes
the JSON audit trail, ``tls`` turns certificate paths into driver arguments. The FastAPI side
(``ragruntime.api.auth``) and the CLI (``ragruntime.security.cli``) build on these.
"""
