# The portal loads a CAPTCHA module at start even when no form uses one, and its default module
# needs Image::Magick (a large dependency). The test provider turns every CAPTCHA off and names
# this module instead; were a form ever to use it, every answer would be refused.
package CleaveTest::NoCaptcha;

use strict;
use Mouse;

extends 'Lemonldap::NG::Portal::Main::Plugin';

sub init { return 1 }

sub init_captcha {
    my ( $self, $req ) = @_;
    $req->captchaHtml('');
}

sub check_captcha { return 0 }

1;
