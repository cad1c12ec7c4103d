"""The US and EU clouds on 127.0.0.1 ports (fleet option `serve_clouds`), for checks that run on the host.

Serves the same Cloud objects the instances call in-process: identity (`POST /connect/token`, `GET /alive`) and
API (`GET /alive`, `GET /licenses/organization/{id}`), as `BaseIdentityClientService` and the preflight reach them
(contract 3.2). Each region and service has three ports, and the inventory's endpoints pick one per instance
(`cloud_endpoint_fault`): a TLS port whose certificate the fleet CA signed, a TLS port with a self-signed
certificate (TLS failure), and a port that is bound but never listens (connection refused). The DNS fault is a
`.invalid` host name (RFC 6761: never resolves).

Every request the hosts send comes from 127.0.0.1, so the port stands for the client's address: each egress (fleet
key `egress`) has its own trusted port per region and service, and the cloud's per-IP rate limits count per port.
"""

import urllib.parse

from .httpserver import Listener, Response, json_response
from .identity import utc_now_json
from .routing import Route, Router

SERVICES = ("identity", "api")


def _form(request):
    return {key: values[-1] for key, values in urllib.parse.parse_qs(request.body.decode("utf-8", "replace")).items()}


def _reply(cloud_response):
    if cloud_response.body is None:
        return Response(cloud_response.status, headers=cloud_response.headers.items())
    return json_response(cloud_response.status, cloud_response.body, cloud_response.headers.items())


class CloudApp:
    """One service of one region's cloud over HTTP."""

    def __init__(self, cloud, service, egress):
        self.cloud = cloud
        self.service = service
        self.egress = egress
        routes = [Route("GET", "/alive", self.alive)]
        if service == "identity":
            routes.append(Route("POST", "/connect/token", self.token))
        else:
            routes.append(Route("GET", "/licenses/organization/{id}", self.organization_license))
        self.router = Router(routes)

    def __call__(self, request):
        limited = self.cloud.rate_limiter.admit(self.service, request.method, request.path, self.egress)
        if limited is not None:
            return _reply(limited)
        route, params = self.router.resolve(request.method, request.path, (9999, 0, 0))
        if route is None:
            return Response(405 if params == "405" else 404)
        return route.handler(request, params)

    @staticmethod
    def alive(_request, _params):
        return json_response(200, utc_now_json())  # InfoController.GetAlive: DateTime.UtcNow

    def token(self, request, _params):
        return _reply(self.cloud.token(_form(request)))

    def organization_license(self, request, params):
        auth = request.header("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        try:
            model = request.json() if request.body else {}
        except ValueError:
            model = {}
        return _reply(self.cloud.organization_license(token, params["id"], model))


class CloudPorts:
    """Listeners for every region and service; `base_uri(region, service, fault, egress)` is what an inventory points at."""

    def __init__(self, acceptor, clouds, trusted_context, untrusted_context, egresses):
        self.ports = {}
        self._listeners = []
        for region, cloud in clouds.regions.items():
            for service in SERVICES:
                ports = self.ports[(region, service)] = {"ok": {}}
                for egress in sorted(set(egresses)):
                    trusted = Listener(acceptor, CloudApp(cloud, service, egress), trusted_context)
                    trusted.start()
                    self._listeners.append(trusted)
                    ports["ok"][egress] = trusted.port
                app = CloudApp(cloud, service, "(untrusted)")
                untrusted = Listener(acceptor, app, untrusted_context)
                refused = Listener(acceptor, app, trusted_context)  # bound, never listening: connection refused
                untrusted.start()
                self._listeners += [untrusted, refused]
                ports.update(tls=untrusted.port, refused=refused.port)

    def base_uri(self, region, service, fault, egress):
        ports = self.ports[(region, service)]
        if fault == "dns":
            return f"https://{service}.{region.lower()}.bwsim.invalid:{ports['ok'][egress]}"
        return f"https://127.0.0.1:{ports[fault] if fault in ('tls', 'refused') else ports['ok'][egress]}"

    def close(self):
        for listener in self._listeners:
            listener.close()
