"""Cloud credential endpoints on real sockets, speaking the wire formats botocore and google-auth read.

* :class:`ContainerCredentials` - the ECS/EKS container credentials endpoint
  (``AWS_CONTAINER_CREDENTIALS_FULL_URI``): ``GET`` → ``{"AccessKeyId", "SecretAccessKey", "Token",
  "Expiration"}``; every call issues new keys.
* :class:`InstanceMetadata` - EC2 instance metadata (IMDSv2), reached through
  ``AWS_EC2_METADATA_SERVICE_ENDPOINT``.
* :class:`MockSts` - STS ``AssumeRoleWithWebIdentity`` and ``AssumeRole`` (form POSTs answered
  with the XML documents of the STS 2011-06-15 API), reached through ``AWS_ENDPOINT_URL_STS``;
  it keeps each request so a test can check AssumeRole's SigV4 signature.
* :class:`OAuthTokenEndpoint` - Google's OAuth token endpoint for an ``authorized_user`` file's
  ``refresh_token`` grant, and Google's STS ``token-exchange`` grant for an ``external_account``
  file (workload identity federation, the ``token_url`` in the file), plus the Resource Manager
  project lookup google-auth makes for such a file.
* :class:`MetadataServer` - the metadata server of GCE, GKE and Cloud Run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from tests.socket_app import SocketApp


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ContainerCredentials(SocketApp):
    def __init__(self, lifetime: float = 3600.0, token: str = "container-auth-token") -> None:
        super().__init__()
        self.lifetime = lifetime
        self.token = token
        self.calls: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v2/credentials/task"

    def keys(self, n: int) -> tuple[str, str, str]:
        """(access key id, secret, session token) of the ``n``-th issue, counting from 1."""
        return f"ASIACONTAINER{n:04d}", f"container-secret-{n}", f"container-session-{n}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/credentials/task", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append({k.lower(): v for k, v in request.headers.items()})
        if request.headers.get("Authorization") != self.token:
            return web.json_response({"message": "unauthorized"}, status=401)
        key, secret, session = self.keys(len(self.calls))
        return web.json_response({"AccessKeyId": key, "SecretAccessKey": secret, "Token": session,
                                  "Expiration": _iso(time.time() + self.lifetime),
                                  "RoleArn": "arn:aws:iam::123456789012:role/task"})


class MockSts(SocketApp):
    ACCESS_KEY = "ASIAWEBIDENTITY00001"
    SECRET = "web-identity-secret"
    SESSION = "web-identity-session-token"
    ASSUMED_KEY = "ASIAASSUMEDROLE00001"
    ASSUMED_SECRET = "assumed-role-secret"
    ASSUMED_SESSION = "assumed-role-session-token"

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        #: (headers, body) of each request.
        self.requests: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
        self.forms.append(form)
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, raw))
        role, name = form.get("RoleArn", ""), form.get("RoleSessionName", "")
        arn = f"{role.replace(':iam:', ':sts:').replace(':role/', ':assumed-role/')}/{name}"
        if form.get("Action") == "AssumeRole":
            return web.Response(text=self._assume_role(arn, name), content_type="text/xml")
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return web.Response(status=400, text="unexpected action")
        body = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:interlock</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>{arn}</Arn>
      <AssumedRoleId>AROAEXAMPLE:{name}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{self.SESSION}</SessionToken>
      <SecretAccessKey>{self.SECRET}</SecretAccessKey>
      <Expiration>{_iso(time.time() + 3600)}</Expiration>
      <AccessKeyId>{self.ACCESS_KEY}</AccessKeyId>
    </Credentials>
    <Provider>oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
        return web.Response(text=body, content_type="text/xml")

    def _assume_role(self, arn: str, name: str) -> str:
        return f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>{arn}</Arn><AssumedRoleId>AROAASSUMED:{name}</AssumedRoleId></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{self.ASSUMED_KEY}</AccessKeyId>
      <SecretAccessKey>{self.ASSUMED_SECRET}</SecretAccessKey>
      <SessionToken>{self.ASSUMED_SESSION}</SessionToken>
      <Expiration>{_iso(time.time() + 3600)}</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>4e9b6b8a-1a5c-4a5e-9f4e-1f0c3d2b7a10</RequestId></ResponseMetadata>
</AssumeRoleResponse>"""


class OAuthTokenEndpoint(SocketApp):
    CLIENT_ID = "764086051850-test.apps.googleusercontent.com"
    CLIENT_SECRET = "d-FL95Q19q7MQmFpd7hHD0Ty"
    REFRESH_TOKEN = "1//0g-refresh-token"

    def __init__(self, expires_in: int = 3599) -> None:
        super().__init__()
        self.expires_in = expires_in
        self.forms: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    SUBJECT_TOKEN = "eyJhbGciOiJSUzI1NiJ9.oidc-subject.sig"
    AUDIENCE = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/pool/providers/oidc"

    def token(self, n: int) -> str:
        return f"ya29.user-token-{n}"

    @property
    def resource_manager(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/projects/"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self._handle)
        app.router.add_get("/v1/projects/{number}", self._project)

    async def _project(self, request: web.Request) -> web.Response:
        if not request.headers.get("Authorization", "").startswith("Bearer ya29."):
            return web.json_response({"error": {"code": 401}}, status=401)
        number = request.match_info["number"]
        return web.json_response({"projectNumber": number, "projectId": f"proj-{number}", "lifecycleState": "ACTIVE"})

    async def _handle(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        self.forms.append(form)
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:token-exchange":
            if form.get("subject_token") != self.SUBJECT_TOKEN or form.get("audience") != self.AUDIENCE:
                return web.json_response({"error": "invalid_grant"}, status=400)
            return web.json_response({"access_token": self.token(len(self.forms)), "expires_in": self.expires_in,
                                      "token_type": "Bearer",
                                      "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
        if (form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.REFRESH_TOKEN
                or form.get("client_id") != self.CLIENT_ID or form.get("client_secret") != self.CLIENT_SECRET):
            return web.json_response({"error": "invalid_grant", "error_description": "Bad Request"}, status=400)
        return web.Response(body=orjson.dumps({
            "access_token": self.token(len(self.forms)), "expires_in": self.expires_in, "token_type": "Bearer",
            "scope": "https://www.googleapis.com/auth/cloud-platform"}), content_type="application/json")

    def external_account_file(self, subject_token_file: str) -> dict[str, object]:
        """Workload identity federation: an OIDC token in a file, exchanged at this endpoint."""
        return {"type": "external_account", "audience": self.AUDIENCE,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt", "token_url": self.url,
                "credential_source": {"file": subject_token_file}}

    def authorized_user_file(self, quota_project: str) -> dict[str, str]:
        """What ``gcloud auth application-default login`` writes, pointed at this endpoint."""
        return {"type": "authorized_user", "client_id": self.CLIENT_ID, "client_secret": self.CLIENT_SECRET,
                "refresh_token": self.REFRESH_TOKEN, "quota_project_id": quota_project, "token_uri": self.url}


class MetadataServer(SocketApp):
    """The GCE/GKE/Cloud Run metadata server: the ping, the project id, the service account and its tokens."""

    EMAIL = "vertex-caller@proj-gke.iam.gserviceaccount.com"

    def __init__(self, project: str = "proj-gke") -> None:
        super().__init__()
        self.project = project
        self.tokens_issued = 0
        self.paths: list[str] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def token(self, n: int) -> str:
        return f"ya29.metadata-token-{n}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        flavor = {"Metadata-Flavor": "Google"}
        self.paths.append(request.path_qs)
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, text="Missing Metadata-Flavor:Google header.")
        path = request.path.removeprefix("/computeMetadata/v1/")
        if request.path == "/":
            return web.Response(text="computeMetadata/\n", headers=flavor)
        if path == "project/project-id":
            return web.Response(text=self.project, headers=flavor)
        if path in ("instance/service-accounts/default/", f"instance/service-accounts/{self.EMAIL}/"):
            return web.json_response({"aliases": ["default"], "email": self.EMAIL,
                                      "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}, headers=flavor)
        if path in ("instance/service-accounts/default/token", f"instance/service-accounts/{self.EMAIL}/token"):
            self.tokens_issued += 1
            return web.json_response({"access_token": self.token(self.tokens_issued), "expires_in": 3599,
                                      "token_type": "Bearer"}, headers=flavor)
        return web.Response(status=404, text="not found", headers=flavor)


class InstanceMetadata(SocketApp):
    """EC2 instance metadata (IMDSv2): a session token by PUT, then the instance role's credentials."""

    ROLE = "bedrock-instance-role"
    ACCESS_KEY = "ASIAINSTANCE00000001"
    SECRET = "instance-secret"
    SESSION = "instance-session-token"
    IMDS_TOKEN = "AQAEAimdsv2-session-token=="

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def routes(self, app: web.Application) -> None:
        app.router.add_put("/latest/api/token", self._token)
        app.router.add_get("/latest/meta-data/iam/security-credentials/", self._roles)
        app.router.add_get("/latest/meta-data/iam/security-credentials/{role}", self._credentials)

    async def _token(self, request: web.Request) -> web.Response:
        self.requests.append(("PUT", request.path))
        if not request.headers.get("x-aws-ec2-metadata-token-ttl-seconds"):
            return web.Response(status=400)
        return web.Response(text=self.IMDS_TOKEN)

    def _authorized(self, request: web.Request) -> bool:
        self.requests.append(("GET", request.path))
        return request.headers.get("x-aws-ec2-metadata-token") == self.IMDS_TOKEN

    async def _roles(self, request: web.Request) -> web.Response:
        return web.Response(text=self.ROLE) if self._authorized(request) else web.Response(status=401)

    async def _credentials(self, request: web.Request) -> web.Response:
        if not self._authorized(request) or request.match_info["role"] != self.ROLE:
            return web.Response(status=401)
        return web.json_response({"Code": "Success", "LastUpdated": _iso(time.time()), "Type": "AWS-HMAC",
                                  "AccessKeyId": self.ACCESS_KEY, "SecretAccessKey": self.SECRET,
                                  "Token": self.SESSION, "Expiration": _iso(time.time() + 6 * 3600)})
