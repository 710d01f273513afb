from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        # The security log hears of sign-ins, failures, sign-outs and lockouts from Django and django-axes.
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed

        from accounts import security
        from config.middleware import mark_session_fresh

        user_logged_in.connect(security.on_signed_in, dispatch_uid="security-log-signed-in")
        user_login_failed.connect(security.on_sign_in_failed, dispatch_uid="security-log-sign-in-failed")
        user_logged_out.connect(security.on_signed_out, dispatch_uid="security-log-signed-out")
        user_locked_out.connect(security.on_locked_out, dispatch_uid="security-log-locked-out")
        user_logged_in.connect(mark_session_fresh, dispatch_uid="session-fresh-on-sign-in")
