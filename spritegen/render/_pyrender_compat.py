"""Import pyrender safely: headless EGL by default, and the numpy 2 alias it still needs.

Every pyrender import in spritegen goes through :func:`import_pyrender`, so the two traps of the
stack (design section 7) are handled here and nowhere else:

* pyrender picks its GL platform when it is first imported; unset, it tries to open a window and
  fails on a headless machine. We default ``PYOPENGL_PLATFORM`` to ``egl`` (Mesa llvmpipe on a CPU,
  the vendor driver on a GPU) but respect a value the user already set (e.g. ``osmesa``).
* pyrender 0.1.45 uses ``np.infty`` (``Mesh.bounds``, ``Scene.bounds``, shadows), an alias that
  numpy 2 removed. We restore the alias, pointing at ``np.inf``, only when it is missing.

* pyrender's EGL platform calls ``eglTerminate`` when one ``OffscreenRenderer`` is deleted, but
  every context of a process shares the one EGL display, so closing one renderer breaks every other
  renderer still alive in that process. :func:`open_offscreen` / :func:`close_offscreen` count the
  live EGL renderers and terminate the display only when the last one closes.

* A process forked from one that has ever created a GL context (even one since closed) hangs when
  it creates its own (Mesa's driver state does not survive ``fork``). :func:`open_offscreen` turns
  that hang into a clear error; start 3D workers with the ``spawn`` (or ``forkserver``) method.

It also lets a caller move Mesa's on-disk shader cache (written under ``$HOME`` by default) with
:func:`redirect_shader_cache`, which tests and sandboxed workers use.
"""

from __future__ import annotations

import os
from types import ModuleType

import numpy as np

from spritegen.errors import RendererUnavailable, quote


def redirect_shader_cache(directory: str | os.PathLike[str]) -> None:
    """Point Mesa's shader cache at ``directory`` unless the user chose one already.

    Mesa reads ``MESA_SHADER_CACHE_DIR`` (and falls back to ``XDG_CACHE_HOME``, then ``$HOME``)
    when a GL context is created, so this must run before the first renderer is built.
    """
    if "MESA_SHADER_CACHE_DIR" not in os.environ and "XDG_CACHE_HOME" not in os.environ:
        os.environ["MESA_SHADER_CACHE_DIR"] = os.fspath(directory)


def import_pyrender() -> ModuleType:
    """Return the pyrender module, imported headless and patched for numpy 2."""
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    if not hasattr(np, "infty"):
        np.infty = np.inf  # type: ignore[attr-defined]  # removed in numpy 2; pyrender uses it
    try:
        import pyrender
    except ImportError as exc:  # PyOpenGL loads the platform's library when imported
        raise _unavailable(exc) from None
    return pyrender


def _unavailable(exc: BaseException) -> RendererUnavailable:
    """One line for a GL platform that cannot start: ``PYOPENGL_PLATFORM=bogus`` (pyrender's
    ``ValueError: Unsupported PyOpenGL platform``) or ``osmesa`` without libOSMesa (PyOpenGL's
    ``ImportError``) ended ``spritegen build`` in a traceback from a worker process."""
    platform = os.environ.get("PYOPENGL_PLATFORM", "")
    detail = " ".join(str(exc).split())
    return RendererUnavailable(
        f"the 3D renderer cannot start with PYOPENGL_PLATFORM={quote(platform)}: "
        f"{type(exc).__name__}: {detail[:200]}; unset it for headless EGL (the default), or "
        "install what that platform needs (docs/render3d.md)"
    )


_live_egl_renderers = 0
_gl_pid: int | None = None  # the process that created a GL context, inherited by forked children


def open_offscreen(width: int, height: int):  # -> pyrender.OffscreenRenderer
    """Create a pyrender ``OffscreenRenderer``; pair with :func:`close_offscreen`."""
    global _live_egl_renderers, _gl_pid
    if _gl_pid is not None and _gl_pid != os.getpid():
        raise RuntimeError(
            "cannot create a 3D renderer in a process forked from one that already used OpenGL "
            f"(pid {_gl_pid}); start 3D workers with multiprocessing's 'spawn' or 'forkserver' "
            "method, or create no renderer in the parent before forking"
        )
    pyrender = import_pyrender()
    try:
        renderer = pyrender.OffscreenRenderer(width, height)
    except Exception as exc:  # the platform's library is missing or cannot make a context
        raise _unavailable(exc) from None
    _gl_pid = os.getpid()
    if _is_egl(renderer):
        _live_egl_renderers += 1
    return renderer


def close_offscreen(renderer) -> None:
    """Free a renderer's GL resources and context without breaking other live renderers."""
    global _live_egl_renderers
    if not _is_egl(renderer):
        renderer.delete()
        return
    _live_egl_renderers -= 1
    if _live_egl_renderers == 0:
        renderer.delete()  # the last one: pyrender also terminates the shared display
        return
    from OpenGL.EGL import EGL_NO_CONTEXT, EGL_NO_SURFACE, eglDestroyContext, eglMakeCurrent

    platform = renderer._platform
    platform.make_current()
    renderer._renderer.delete()
    eglMakeCurrent(platform._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
    eglDestroyContext(platform._egl_display, platform._egl_context)
    platform._egl_context = None
    platform._egl_display = None
    renderer._renderer = None
    renderer._platform = None


def _is_egl(renderer) -> bool:
    return type(renderer._platform).__name__ == "EGLPlatform"
