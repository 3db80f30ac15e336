"""Where an address is: a configured network-to-location map, then an optional
MaxMind database (``maxminddb`` package, imported only when configured).

``security.network_locations`` is a list of ``{cidr, name, lat, lon}`` (or a
mapping ``cidr: {name, lat, lon}``); the most specific matching network wins.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass

from zerotrust_admin.errors import UsageError

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Location:
    name: str
    lat: float
    lon: float


def haversine_km(a: Location, b: Location) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def network_of(ip: str, v4_prefix: int = 24, v6_prefix: int = 48) -> str:
    """The network an address belongs to (/24 and /48 by default); the text
    itself when it is not an address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return str(ip)
    prefix = v4_prefix if addr.version == 4 else v6_prefix
    return str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


class Locator:
    def __init__(self, entries=None, geoip_db: str | None = None):
        self._nets: list[tuple[object, Location]] = []
        for cidr, loc in _entries(entries):
            try:
                net = ipaddress.ip_network(str(cidr), strict=False)
            except ValueError:
                raise UsageError(f"security.network_locations: {cidr!r} is not a network (CIDR)") from None
            self._nets.append((net, loc))
        self._nets.sort(key=lambda item: item[0].prefixlen, reverse=True)
        self._reader = None
        self.geoip_note: str | None = None
        if geoip_db:
            try:
                import maxminddb  # optional; not a dependency

                self._reader = maxminddb.open_database(str(geoip_db))
            except ImportError:
                self.geoip_note = "geoip_db is configured but the maxminddb package is not installed; only the network map is used"
            except (OSError, ValueError) as exc:
                self.geoip_note = f"geoip_db {geoip_db} could not be opened ({type(exc).__name__}); only the network map is used"
        self._cache: dict[str, Location | None] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._nets) or self._reader is not None

    def locate(self, ip: str) -> Location | None:
        if ip in self._cache:
            return self._cache[ip]
        found = None
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            addr = None
        if addr is not None:
            for net, loc in self._nets:
                if addr.version == net.version and addr in net:
                    found = loc
                    break
            if found is None and self._reader is not None:
                found = _maxmind(self._reader, ip)
        if len(self._cache) < 100_000:
            self._cache[ip] = found
        return found


def _entries(entries):
    if not entries:
        return []
    if isinstance(entries, dict):
        items = [dict(v, cidr=k) if isinstance(v, dict) else {"cidr": k, "name": str(v)} for k, v in entries.items()]
    elif isinstance(entries, list):
        items = entries
    else:
        raise UsageError("security.network_locations must be a list of {cidr, name, lat, lon}")
    out = []
    for item in items:
        if not isinstance(item, dict) or "cidr" not in item:
            raise UsageError("each security.network_locations entry needs cidr, name, lat and lon")
        try:
            loc = Location(str(item.get("name") or item["cidr"]), float(item["lat"]), float(item["lon"]))
        except (KeyError, TypeError, ValueError):
            raise UsageError(f"security.network_locations entry {item.get('cidr')!r} needs numeric lat and lon") from None
        out.append((item["cidr"], loc))
    return out


def _maxmind(reader, ip: str) -> Location | None:
    try:
        data = reader.get(ip)
    except ValueError:
        return None
    if not data or "location" not in data:
        return None
    loc = data["location"]
    city = (data.get("city") or {}).get("names", {}).get("en")
    country = (data.get("country") or {}).get("iso_code")
    name = ", ".join(x for x in (city, country) if x) or f"{loc.get('latitude')},{loc.get('longitude')}"
    try:
        return Location(name, float(loc["latitude"]), float(loc["longitude"]))
    except (KeyError, TypeError, ValueError):
        return None
