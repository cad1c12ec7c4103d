"""ASP.NET-like routing: case-insensitive literals, `{param}` segments, optional trailing slash, 405 on a wrong method."""


class Route:
    def __init__(self, method, template, handler, min_version=None, below_version=None):
        self.method = method
        self.template = template
        self.handler = handler
        self.min_version = min_version
        self.below_version = below_version
        self.segments = [s for s in template.split("/") if s]
        self.literals = sum(1 for s in self.segments if not s.startswith("{"))

    def available(self, version):
        return (self.min_version is None or version >= self.min_version) and (self.below_version is None or version < self.below_version)

    def match(self, parts):
        if len(parts) != len(self.segments):
            return None
        params = {}
        for want, got in zip(self.segments, parts):
            if want.startswith("{"):
                params[want[1:-1]] = got
            elif want.lower() != got.lower():
                return None
        return params


class Router:
    def __init__(self, routes):
        self.routes = routes

    def resolve(self, method, path, version):
        """-> (route, params) for a match, (None, "405") when only the method is wrong, (None, None) otherwise."""
        parts = [p for p in path.split("/") if p]
        if path.count("//"):
            return None, None
        candidates = []
        for route in self.routes:
            if not route.available(version):
                continue
            params = route.match(parts)
            if params is not None:
                candidates.append((route, params))
        if not candidates:
            return None, None
        candidates.sort(key=lambda c: -c[0].literals)
        for route, params in candidates:
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, params
        return None, "405"
