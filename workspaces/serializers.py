from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.utils import get_md5_hash_password

from workspaces import tokens
from workspaces.models import Membership, Role, User


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(write_only=True, max_length=128, trim_whitespace=False)
    workspace_name = serializers.CharField(max_length=200, required=False, allow_blank=False)


class WorkspaceSummarySerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(read_only=True)


class RegisteredUserSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    workspace = WorkspaceSummarySerializer()


class EmailTokenObtainSerializer(TokenObtainPairSerializer):
    """Email and password in, access and refresh out; the email is matched case-insensitively."""

    token_class = tokens.VersionedRefreshToken  # carries the user's token version, so logout can revoke it

    def validate(self, attrs):
        attrs[self.username_field] = attrs[self.username_field].strip().lower()
        return super().validate(attrs)


class RotatingRefreshSerializer(TokenRefreshSerializer):
    """Refresh with rotation that holds under concurrency: the token's outstanding row is locked while it is
    checked and blacklisted, so of two requests refreshing the same token at once, one succeeds and the other
    gets 401. A token whose user is gone, inactive, or has changed password since is refused (401)."""

    def validate(self, attrs):
        with transaction.atomic():
            refresh = self.token_class(attrs["refresh"])  # signature, expiry, type, blacklist
            outstanding = (
                OutstandingToken.objects.select_for_update()
                .filter(jti=refresh[jwt_settings.JTI_CLAIM])
                .order_by()  # the model orders by its nullable user, an outer join FOR UPDATE refuses
                .first()
            )
            if outstanding is None or BlacklistedToken.objects.filter(token=outstanding).exists():
                raise TokenError("Token is blacklisted")
            user = _token_user(refresh)
            if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
                raise AuthenticationFailed(self.error_messages["no_active_account"], "no_active_account")
            revoke_claim = jwt_settings.REVOKE_TOKEN_CLAIM
            if jwt_settings.CHECK_REVOKE_TOKEN and refresh.get(revoke_claim) != get_md5_hash_password(user.password):
                raise AuthenticationFailed("The user's password has changed", code="password_changed")
            BlacklistedToken.objects.create(token=outstanding)
            tokens.stamp(refresh, user)  # the new tokens carry the current version, whatever the old one said
            data = {"access": str(refresh.access_token)}
            refresh.set_jti()
            refresh.set_exp()
            refresh.set_iat()
            refresh.outstand()
            data["refresh"] = str(refresh)
        return data


def _token_user(token) -> User | None:
    try:
        user_id = int(token.payload.get(jwt_settings.USER_ID_CLAIM))
    except (TypeError, ValueError):
        return None
    return User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class RefreshTokenSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class PasswordChangeSerializer(serializers.Serializer):
    old_password = serializers.CharField(max_length=128, trim_whitespace=False)
    new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    def validate_new_password(self, value: str) -> str:
        validate_password(value, user=self.context["request"].user)
        return value


class WorkspaceSerializer(serializers.Serializer):
    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=200)
    role = serializers.CharField(read_only=True)


class MemberSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="user.id", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["user_id", "email", "role"]


class MemberAddSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices, default=Role.MEMBER)


class MemberRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
