# The test OpenID provider: LemonLDAP::NG's portal (Debian's liblemonldap-ng-portal-perl) with
# its static files and the JavaScript libraries Debian ships for its pages (/javascript, what
# the packaged web server configurations alias), served by plackup. llng_op.sh writes the
# configuration it reads.
use strict;
use warnings;
use Plack::Builder;
use Plack::App::File;
use Lemonldap::NG::Portal::Main;

my $portal = Lemonldap::NG::Portal::Main->run( {} );
builder {
    mount '/static' =>
      Plack::App::File->new( root => '/usr/share/lemonldap-ng/portal/htdocs/static' )->to_app;
    mount '/javascript' =>
      Plack::App::File->new( root => '/usr/share/javascript' )->to_app;
    mount '/' => $portal;
};
