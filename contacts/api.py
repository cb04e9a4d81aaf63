from django.db.models import Q
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins

from contacts import services
from contacts.models import Contact
from contacts.serializers import ContactSerializer
from workspaces.scoping import WorkspaceScopedViewSet


@extend_schema_view(
    list=extend_schema(parameters=[OpenApiParameter("search", str, description="Name, email, phone or company")])
)
@extend_schema(tags=["contacts"])
class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceScopedViewSet,
):
    serializer_class = ContactSerializer

    def get_unscoped_queryset(self):
        queryset = Contact.objects.all()
        search = self.request.query_params.get("search", "").strip()
        if search:
            queryset = queryset.filter(
                Q(email__icontains=search)
                | Q(phone__icontains=search)
                | Q(first_name__icontains=search)
                | Q(last_name__icontains=search)
                | Q(company__icontains=search)
            )
        return queryset

    def perform_create(self, serializer):
        serializer.instance = services.contact_create(workspace=self.request.workspace, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = services.contact_update(contact=serializer.instance, **serializer.validated_data)
