"""Bearer-token check for every call but health checks (load balancers probe without credentials)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)


if TYPE_CHECKING:
    _Interceptor = grpc.aio.ServerInterceptor[Any, Any]
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:
    _Interceptor = grpc.aio.ServerInterceptor
    _Handler = grpc.RpcMethodHandler


class TokenInterceptor(_Interceptor):
    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(EXEMPT_PREFIXES):
            return handler
        supplied = [
            value for key, value in handler_call_details.invocation_metadata or () if key == "authorization"
        ]
        if len(supplied) > 1:
            # Proxies and libraries disagree on which of two headers counts: refuse to guess.
            return _deny(handler, f"{len(supplied)} authorization headers: send exactly one")
        value = supplied[0] if supplied else ""
        supplied_bytes = value.encode() if isinstance(value, str) else bytes(value)
        # Constant-time comparison: the token must not leak through response timing.
        if hmac.compare_digest(supplied_bytes, self._expected):
            return handler
        message = "missing bearer token" if not value else "invalid bearer token"
        return _deny(
            handler, f"{message}: send metadata 'authorization: Bearer <token>' (--token / GENFX_TOKEN)"
        )


def _deny(handler: _Handler, message: str) -> _Handler:
    async def abort(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)
