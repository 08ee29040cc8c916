"""Mattermost ``AppError`` responses with their stable ids."""

from __future__ import annotations


class AppError(Exception):
    """An error the sandbox answers with, shaped like Mattermost's AppError JSON."""

    def __init__(self, status: int, error_id: str, message: str, detailed_error: str = "") -> None:
        super().__init__(f"{status} {error_id}: {message}")
        self.status = status
        self.id = error_id
        self.message = message
        self.detailed_error = detailed_error

    def to_dict(self, request_id: str) -> dict:
        """The JSON body Mattermost sends for this error."""
        return {
            "id": self.id,
            "message": self.message,
            "detailed_error": self.detailed_error,
            "request_id": request_id,
            "status_code": self.status,
        }


def invalid_url_param(name: str) -> AppError:
    return AppError(400, "api.context.invalid_url_param.app_error",
                    f"Invalid or missing {name} parameter in request URL.")


def invalid_body_param(name: str) -> AppError:
    return AppError(400, "api.context.invalid_body_param.app_error",
                    f"Invalid or missing {name} in request body.")


def invalid_param(name: str) -> AppError:
    """Mattermost's ``SetInvalidParam``: it reuses the invalid_body_param id."""
    return invalid_body_param(name)


def session_expired() -> AppError:
    return AppError(401, "api.context.session_expired.app_error",
                    "Invalid or expired session, please login again.")


def permissions(detail: str = "") -> AppError:
    return AppError(403, "api.context.permissions.app_error",
                    "You do not have the appropriate permissions.", detail)


def not_found_route() -> AppError:
    return AppError(404, "api.context.404.app_error", "Sorry, we could not find the page.")


def too_large() -> AppError:
    return AppError(413, "api.context.request_body_too_large.app_error",
                    "The request body is too large.")


def internal(detail: str = "") -> AppError:
    return AppError(500, "api.context.unexpected.app_error",
                    "An unexpected error occurred.", detail)


def user_missing() -> AppError:
    return AppError(404, "app.user.missing_account.const", "Unable to find the user.")


def team_missing() -> AppError:
    return AppError(404, "app.team.get.find.app_error", "Unable to find the existing team.")


def channel_missing() -> AppError:
    return AppError(404, "app.channel.get.existing.app_error", "Unable to find the existing channel.")


def post_missing() -> AppError:
    return AppError(404, "app.post.get.app_error", "Unable to get the post.")
