//! Geo conditions over payload points `{"lon": x, "lat": y}` (or arrays of them), as Qdrant checks
//! them: a radius by haversine distance on a sphere of the Earth's mean radius, a bounding box that
//! may cross the antimeridian, a polygon with holes. Boundaries are excluded throughout.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The Earth's mean radius in meters (the `geo` crate's, which Qdrant measures with).
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A point in degrees: longitude in [-180, 180], latitude in [-90, 90].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGeoPoint")]
pub struct GeoPoint {
    /// Longitude.
    pub lon: f64,
    /// Latitude.
    pub lat: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoPoint {
    lon: f64,
    lat: f64,
}

impl TryFrom<RawGeoPoint> for GeoPoint {
    type Error = String;

    fn try_from(RawGeoPoint { lon, lat }: RawGeoPoint) -> Result<Self, String> {
        if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
            return Err(format!(
                "wrong geo point: expected `lat` = {lat} within [-90; 90] and `lon` = {lon} within \
                 [-180; 180]"
            ));
        }
        Ok(GeoPoint { lon, lat })
    }
}

/// The geo point a payload value holds: an object with numeric `lon` and `lat` (not range-checked,
/// as in Qdrant).
pub(crate) fn point_of(v: &Value) -> Option<GeoPoint> {
    let obj = v.as_object()?;
    Some(GeoPoint {
        lon: obj.get("lon")?.as_f64()?,
        lat: obj.get("lat")?.as_f64()?,
    })
}

/// `{"center": {"lon", "lat"}, "radius": meters}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRadius {
    /// The center.
    pub center: GeoPoint,
    /// The radius in meters; points closer than this pass.
    pub radius: f64,
}

impl GeoRadius {
    /// Whether `p` is strictly within the radius.
    pub fn contains(&self, p: GeoPoint) -> bool {
        haversine_m(self.center, p) < self.radius
    }
}

/// Great-circle distance in meters.
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * h.sqrt().asin() * EARTH_RADIUS_M
}

/// `{"top_left": {…}, "bottom_right": {…}}`. A `top_left` east of `bottom_right` crosses the
/// antimeridian.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoBoundingBox {
    /// North-west corner.
    pub top_left: GeoPoint,
    /// South-east corner.
    pub bottom_right: GeoPoint,
}

impl GeoBoundingBox {
    /// Whether `p` is strictly inside.
    pub fn contains(&self, p: GeoPoint) -> bool {
        let (tl, br) = (self.top_left, self.bottom_right);
        let lon = if tl.lon > br.lon {
            p.lon > tl.lon || p.lon < br.lon
        } else {
            tl.lon < p.lon && p.lon < br.lon
        };
        lon && br.lat < p.lat && p.lat < tl.lat
    }
}

/// `{"points": [{…}, …]}`: a closed ring of at least 4 points, the first equal to the last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoLineString {
    /// The ring's points.
    pub points: Vec<GeoPoint>,
}

/// `{"exterior": {"points": […]}, "interiors": [{"points": […]}, …]}`: the area inside the exterior
/// ring and outside every interior ring (holes). Coordinates are planar (lon as x, lat as y).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawGeoPolygon")]
pub struct GeoPolygon {
    /// The outer ring.
    pub exterior: GeoLineString,
    /// Holes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interiors: Option<Vec<GeoLineString>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoPolygon {
    exterior: GeoLineString,
    #[serde(default)]
    interiors: Option<Vec<GeoLineString>>,
}

impl TryFrom<RawGeoPolygon> for GeoPolygon {
    type Error = String;

    fn try_from(raw: RawGeoPolygon) -> Result<Self, String> {
        check_ring(&raw.exterior, "exterior")?;
        for ring in raw.interiors.iter().flatten() {
            check_ring(ring, "interior")?;
        }
        Ok(GeoPolygon {
            exterior: raw.exterior,
            interiors: raw.interiors,
        })
    }
}

/// Qdrant's `validate_line_string`.
fn check_ring(ring: &GeoLineString, which: &str) -> Result<(), String> {
    let points = &ring.points;
    if points.len() < 4 {
        return Err(format!(
            "geo_polygon: the {which} ring needs at least 4 points, got {}",
            points.len()
        ));
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    if (first.lat - last.lat).abs() > f64::EPSILON || (first.lon - last.lon).abs() > f64::EPSILON {
        return Err(format!(
            "geo_polygon: the {which} ring is not closed (its first and last points must be the same)"
        ));
    }
    Ok(())
}

#[derive(PartialEq)]
enum Position {
    Inside,
    Boundary,
    Outside,
}

impl GeoPolygon {
    /// Whether `p` is strictly inside the exterior ring and strictly outside every hole.
    pub fn contains(&self, p: GeoPoint) -> bool {
        position(&self.exterior.points, p) == Position::Inside
            && self
                .interiors
                .iter()
                .flatten()
                .all(|hole| position(&hole.points, p) == Position::Outside)
    }
}

/// Where `p` lies relative to a closed ring: on an edge, or inside or outside by the even-odd rule.
fn position(ring: &[GeoPoint], p: GeoPoint) -> Position {
    let mut inside = false;
    for edge in ring.windows(2) {
        let (a, b) = (edge[0], edge[1]);
        let cross = (b.lon - a.lon) * (p.lat - a.lat) - (b.lat - a.lat) * (p.lon - a.lon);
        let within = p.lon >= a.lon.min(b.lon)
            && p.lon <= a.lon.max(b.lon)
            && p.lat >= a.lat.min(b.lat)
            && p.lat <= a.lat.max(b.lat);
        if cross == 0.0 && within {
            return Position::Boundary;
        }
        if (a.lat > p.lat) != (b.lat > p.lat) {
            let x = a.lon + (p.lat - a.lat) / (b.lat - a.lat) * (b.lon - a.lon);
            if p.lon < x {
                inside = !inside;
            }
        }
    }
    if inside {
        Position::Inside
    } else {
        Position::Outside
    }
}
