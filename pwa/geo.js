// Coordinates: the API speaks WGS-84; Chinese map apps (AMap, and Apple Maps inside China) expect GCJ-02.

const A = 6378245.0;
const EE = 0.00669342162296594323;
const { sin, cos, sqrt, abs, PI } = Math;

/** WGS-84 → GCJ-02: the same standard transform as server/domain/geo.py's gcj02. */
export function gcj02(lat, lng) {
  const x = lng - 105.0;
  const y = lat - 35.0;
  let dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt(abs(x))
    + (20.0 * sin(6.0 * x * PI) + 20.0 * sin(2.0 * x * PI)) * 2.0 / 3.0
    + (20.0 * sin(y * PI) + 40.0 * sin(y / 3.0 * PI)) * 2.0 / 3.0
    + (160.0 * sin(y / 12.0 * PI) + 320 * sin(y * PI / 30.0)) * 2.0 / 3.0;
  let dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt(abs(x))
    + (20.0 * sin(6.0 * x * PI) + 20.0 * sin(2.0 * x * PI)) * 2.0 / 3.0
    + (20.0 * sin(x * PI) + 40.0 * sin(x / 3.0 * PI)) * 2.0 / 3.0
    + (150.0 * sin(x / 12.0 * PI) + 300.0 * sin(x / 30.0 * PI)) * 2.0 / 3.0;
  const rad = lat / 180.0 * PI;
  const magic = 1 - EE * sin(rad) ** 2;
  const sqrtMagic = sqrt(magic);
  dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
  dlng = (dlng * 180.0) / (A / sqrtMagic * cos(rad) * PI);
  return { lat: lat + dlat, lng: lng + dlng };
}

const fixed = (n) => n.toFixed(6);

// "Near me" asks from the nearest point of a grid (1/500 of a degree, as server/domain/geo.py's
// NEAR_GRID_PER_DEGREE): the phones of one street send the same question, which the server's cache answers
// once, and the exact position stays on the phone. Distances are measured here, from the phone itself.
const GRID = 500;

/** The grid point "near me" asks from (at most about 150 m from the phone). */
export function snap({ lat, lng }) {
  return { lat: Math.round(lat * GRID) / GRID, lng: Math.round(lng * GRID) / GRID };
}

/** Great-circle metres between two WGS-84 points (as server/domain/geo.py's haversine_m). */
export function metersBetween(a, b) {
  const rad = PI / 180;
  const h = sin((b.lat - a.lat) * rad / 2) ** 2 + cos(a.lat * rad) * cos(b.lat * rad) * sin((b.lng - a.lng) * rad / 2) ** 2;
  return 2 * 6371008.8 * Math.asin(Math.min(1, sqrt(h)));
}

/** AMap marker URI (opens the AMap app when installed, else its web map); GCJ-02 position. */
export function amapUrl({ lat, lng }, name) {
  const g = gcj02(lat, lng);
  return `https://uri.amap.com/marker?position=${fixed(g.lng)},${fixed(g.lat)}&name=${encodeURIComponent(name)}`;
}

/** Apple Maps link; in China Apple Maps is drawn on GCJ-02 too. */
export function appleMapsUrl({ lat, lng }, name) {
  const g = gcj02(lat, lng);
  return `https://maps.apple.com/?ll=${fixed(g.lat)},${fixed(g.lng)}&q=${encodeURIComponent(name)}`;
}

/** The device's position (WGS-84, as the API wants it); only ever called after a tap. */
export function currentPosition() {
  return new Promise((resolve, reject) => {
    if (!("geolocation" in navigator)) return reject(new Error("no geolocation"));
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lat: p.coords.latitude, lng: p.coords.longitude }),
      reject,
      { enableHighAccuracy: false, timeout: 15000, maximumAge: 60000 },
    );
  });
}
