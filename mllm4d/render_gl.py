"""moderngl/EGL backend of ``render.render_clip``: the numpy ray caster ported to a GLSL fragment shader.

One full-screen triangle per view; every fragment casts its pixel's ray against the room box and all
objects analytically (same formulas, uv mapping and shading as ``render.py``), and writes colour and
(z-depth, instance id, coverage bitmask) into two float32 attachments. Runs headless on Mesa llvmpipe
through ``moderngl.create_standalone_context(backend="egl")`` (no display, no apt package).

Pixel convention: ``gl_FragCoord.xy`` = (j + 0.5, i + 0.5) for framebuffer column j, row i, and
``fbo.read`` returns row i first, so with v := (i + 0.5)/ss - 0.5 the read-back image is already in image
order (row 0 = top, v = 0) with no flip. Textures: a ``sampler2DArray`` with GL_REPEAT + linear filtering
and no mipmaps, matching the numpy bilinear wrap lookup. Precision: float32 (numpy uses float64), so
depths agree to ~1e-7 relative and ids differ only on silhouette pixels grazed within float32 error.

The context is created lazily, once per process (``context()``): with multiprocessing, create it in the
workers (a forked GL context is not usable), e.g. call ``render_clip`` only inside the worker function.
"""
from __future__ import annotations

import functools

import numpy as np

MAX_OBJECTS = 16

_VERT = """
#version 330
in vec2 in_pos;
void main() { gl_Position = vec4(in_pos, 0.0, 1.0); }
"""

_FRAG = """
#version 330
#define MAXO %d
const float INF = 1e30;
uniform vec3 cam_o;
uniform mat3 cam_R;            // camera-to-world rotation (columns = camera axes in world)
uniform vec4 intr;             // fx, fy, cx, cy
uniform float ss;
uniform vec3 room_lo;
uniform vec3 room_hi;
uniform vec3 light;
uniform float ambient;
uniform int nobj;
uniform int shape[MAXO];
uniform vec3 halfs[MAXO];
uniform mat3 objR[MAXO];       // object-to-world rotation
uniform vec3 objC[MAXO];       // object centre (world)
uniform float brad[MAXO];      // bounding-sphere radius
uniform float wrap[MAXO];
uniform float period[MAXO + 6];
uniform sampler2DArray tex;
layout(location = 0) out vec4 out_rgb;
layout(location = 1) out vec4 out_geo;   // z-depth, instance id, coverage bitmask, 0

float hit(int s, vec3 h, vec3 o, vec3 d) {
    if (s == 0) {
        vec3 dd = mix(d, vec3(1e-30), equal(d, vec3(0.0)));
        vec3 t1 = (-h - o) / dd, t2 = (h - o) / dd;
        vec3 a = min(t1, t2), b = max(t1, t2);
        float tn = max(max(a.x, a.y), a.z), tf = min(min(b.x, b.y), b.z);
        return (tf >= tn && tn > 0.0) ? tn : INF;
    }
    if (s == 1) {
        float A = dot(d, d), B = dot(o, d), C = dot(o, o) - h.x * h.x;
        float disc = B * B - A * C;
        if (disc < 0.0) return INF;
        float t = (-B - sqrt(disc)) / A;
        return t > 0.0 ? t : INF;
    }
    float r = h.x, hh = h.z, ts = INF, tc = INF;
    float A = d.x * d.x + d.y * d.y, B = d.x * o.x + d.y * o.y;
    float disc = B * B - A * (o.x * o.x + o.y * o.y - r * r);
    if (disc >= 0.0 && A > 0.0) {
        float t = (-B - sqrt(disc)) / A;
        if (t > 0.0 && abs(o.z + t * d.z) <= hh) ts = t;
    }
    if (d.z != 0.0) {
        float t = ((d.z < 0.0 ? hh : -hh) - o.z) / d.z;
        vec2 q = o.xy + t * d.xy;
        if (t > 0.0 && dot(q, q) <= r * r) tc = t;
    }
    return min(ts, tc);
}

void main() {
    vec2 px = gl_FragCoord.xy / ss - 0.5;
    vec3 D = cam_R * vec3((px.x - intr.z) / intr.x, (px.y - intr.w) / intr.y, 1.0);
    // Room: exit distance per axis, without dynamic vector indexing (slow on llvmpipe). Ties go to the
    // lowest axis, like numpy's argmin.
    vec3 tax = mix(mix(vec3(INF), (room_lo - cam_o) / D, lessThan(D, vec3(0.0))), (room_hi - cam_o) / D,
                   greaterThan(D, vec3(0.0)));
    float depth;
    int inst;
    if (tax.x <= tax.y && tax.x <= tax.z) { depth = tax.x; inst = D.x > 0.0 ? -4 : -3; }
    else if (tax.y <= tax.z) { depth = tax.y; inst = D.y > 0.0 ? -6 : -5; }
    else { depth = tax.z; inst = D.z > 0.0 ? -2 : -1; }
    int cover = 0;
    float dd = dot(D, D);
    for (int m = 0; m < nobj; m++) {
        // Bounding-sphere rejection first: most rays miss most objects (the GL twin of numpy's ROI culling).
        vec3 oc = cam_o - objC[m];
        float b = dot(oc, D);
        if (b * b - dd * (dot(oc, oc) - brad[m] * brad[m]) < 0.0) continue;
        mat3 Rt = transpose(objR[m]);
        float t = hit(shape[m], halfs[m], Rt * oc, Rt * D);
        if (t < INF) cover |= 1 << m;
        if (t < depth) { depth = t; inst = m; }
    }
    vec3 P = cam_o + depth * D, n;
    vec2 uv;
    int layer;
    if (inst >= 0) {
        vec3 h = halfs[inst], pl = transpose(objR[inst]) * (P - objC[inst]);
        int s = shape[inst];
        layer = 6 + inst;
        float lon = atan(pl.y, pl.x) / 6.283185307179586 * wrap[inst] * period[layer];
        if (s == 0) {
            vec3 q = abs(pl) / h;
            if (q.x >= q.y && q.x >= q.z) { n = vec3(sign(pl.x), 0.0, 0.0); uv = pl.yz; }
            else if (q.y >= q.z) { n = vec3(0.0, sign(pl.y), 0.0); uv = pl.xz + 0.37; }
            else { n = vec3(0.0, 0.0, sign(pl.z)); uv = pl.xy + 0.74; }
            uv += (n.x + n.y + n.z > 0.0) ? 0.71 : 0.0;
        } else if (s == 1) {
            n = pl / h.x;
            uv = vec2(lon, asin(clamp(pl.z / h.x, -1.0, 1.0)) * h.x);
        } else if (abs(abs(pl.z) - h.z) > abs(length(pl.xy) - h.x)) {
            n = vec3(pl.xy / h.x, 0.0);
            uv = vec2(lon, pl.z);
        } else {
            n = vec3(0.0, 0.0, sign(pl.z));
            uv = pl.xy + 0.53;
        }
        n = objR[inst] * n;
    } else {
        layer = -inst - 1;
        if (layer < 2) { n = vec3(0.0, 0.0, layer == 0 ? 1.0 : -1.0); uv = P.xy; }
        else if (layer < 4) { n = vec3(layer == 2 ? 1.0 : -1.0, 0.0, 0.0); uv = P.yz; }
        else { n = vec3(0.0, layer == 4 ? 1.0 : -1.0, 0.0); uv = P.xz; }
    }
    vec3 alb = texture(tex, vec3(uv / period[layer], float(layer))).rgb;
    vec3 L = light - P;
    float lam = max(dot(n, L) / length(L), 0.0);
    out_rgb = vec4(alb * (ambient + (1.0 - ambient) * lam), 1.0);
    out_geo = vec4(depth, float(inst), float(cover), 0.0);
}
""" % MAX_OBJECTS


@functools.lru_cache(maxsize=1)
def context():
    """The process-wide headless EGL context with the compiled program (created once)."""
    import moderngl
    ctx = moderngl.create_standalone_context(backend="egl")
    ctx.gc_mode = "auto"          # release GL objects (e.g. framebuffers evicted from the cache) when collected
    prog = ctx.program(vertex_shader=_VERT, fragment_shader=_FRAG)
    vbo = ctx.buffer(np.array([[-1, -1], [3, -1], [-1, 3]], "f4").tobytes())
    return ctx, prog, ctx.vertex_array(prog, [(vbo, "2f", "in_pos")])


@functools.lru_cache(maxsize=4)
def _framebuffer(h: int, w: int):
    ctx = context()[0]
    return ctx.framebuffer(color_attachments=[ctx.renderbuffer((w, h), 4, dtype="f4"),
                                              ctx.renderbuffer((w, h), 4, dtype="f4")])


def _set(prog, name: str, value) -> None:
    """Write a uniform if the compiler kept it (unused uniforms are optimised away)."""
    if name in prog:
        if isinstance(value, np.ndarray):
            prog[name].write(np.ascontiguousarray(value, dtype="i4" if value.dtype.kind == "i" else "f4").tobytes())
        else:
            prog[name].value = value


def _mat3(R: np.ndarray) -> np.ndarray:
    """(...,3,3) matrices in GL column-major order."""
    return np.ascontiguousarray(np.swapaxes(R, -1, -2))


def render_views(p, c2w: np.ndarray, K: np.ndarray, size: tuple[int, int], baseline: float, ss: int = 1):
    """Same contract as ``render._render_numpy``: (left, right) (T,H,W,3) float32 in [0,1], and the left
    view's depth (T,H,W) float32, instance (T,H,W) int16, coverage bitmask (T,H,W) int32 at pixel centres."""
    from .render import _right
    M = len(p.shape)
    if M > MAX_OBJECTS:
        raise ValueError(f"render_gl: {M} objects > MAX_OBJECTS={MAX_OBJECTS}")
    ctx, prog, vao = context()
    H, W = size
    T = len(c2w)
    S, L = p.textures.shape[1], len(p.textures)
    tex = ctx.texture_array((S, S, L), 3, np.ascontiguousarray(p.textures).tobytes())
    tex.repeat_x = tex.repeat_y = True
    import moderngl
    tex.filter = (moderngl.LINEAR, moderngl.LINEAR)
    tex.use(0)
    pad = MAX_OBJECTS - M
    _set(prog, "tex", 0)
    _set(prog, "intr", (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2])))
    _set(prog, "room_lo", tuple(p.lo))
    _set(prog, "room_hi", tuple(p.hi))
    _set(prog, "light", tuple(p.light))
    _set(prog, "ambient", float(p.ambient))
    _set(prog, "nobj", M)
    _set(prog, "shape", np.r_[p.shape, np.zeros(pad, int)].astype(np.int32))
    _set(prog, "halfs", np.r_[p.half, np.ones((pad, 3))])
    _set(prog, "wrap", np.r_[p.wrap, np.ones(pad)])
    _set(prog, "brad", np.r_[p.brad * 1.001 + 1e-4, np.ones(pad)])     # float32 slack: never cull a true hit
    _set(prog, "period", np.r_[p.period, np.ones(pad)])
    left, right = np.empty((T, H, W, 3), np.float32), np.empty((T, H, W, 3), np.float32)
    depth, inst, cover = np.empty((T, H, W), np.float32), np.empty((T, H, W), np.int16), np.empty((T, H, W), np.int32)
    cr = _right(c2w, baseline)

    def draw(pose, s, want_geo=True):
        fbo = _framebuffer(H * s, W * s)
        fbo.use()
        _set(prog, "ss", float(s))
        _set(prog, "cam_o", tuple(pose[:, 3]))
        _set(prog, "cam_R", tuple(_mat3(pose[:, :3]).reshape(-1)))
        vao.render(vertices=3)
        rgb = np.frombuffer(fbo.read(attachment=0, components=3, dtype="f4"), np.float32).reshape(H * s, W * s, 3)
        if s > 1:
            rgb = rgb.reshape(H, s, W, s, 3).mean((1, 3))
        geo = np.frombuffer(fbo.read(attachment=1, components=3, dtype="f4"), np.float32).reshape(
            H * s, W * s, 3) if want_geo else None
        return rgb, geo

    try:
        for t in range(T):
            _set(prog, "objR", np.r_[_mat3(p.poses[t, :, :3, :3]), np.tile(np.eye(3), (pad, 1, 1))])
            _set(prog, "objC", np.r_[p.poses[t, :, :3, 3], np.zeros((pad, 3))])
            left[t], geo = draw(c2w[t], ss, want_geo=ss == 1)
            if ss > 1:                 # GT lives at pixel centres: one extra pass at ss = 1
                geo = draw(c2w[t], 1)[1]
            depth[t] = np.where(geo[..., 0] >= 1e29, np.inf, geo[..., 0])
            inst[t], cover[t] = geo[..., 1].astype(np.int16), geo[..., 2].astype(np.int32)
            right[t] = draw(cr[t], ss, want_geo=False)[0]
    finally:
        tex.release()
    return left, right, depth, inst, cover
