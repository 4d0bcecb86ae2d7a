<?xml version="1.0" encoding="UTF-8"?>
<!--
  Shows an Atom or RSS feed of the blog, opened in a browser, as a French page:
  what a feed is, how to follow it, its latest posts, and the e-mail newsletter.
  XSLT 1.0, no JavaScript, no inline style: the look is in feed.css beside it.
  Feed readers ignore this file; it only changes what a browser shows.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="feed" select="/atom:feed | /rss/channel"/>
  <xsl:variable name="title" select="$feed/atom:title | $feed/title"/>
  <xsl:variable name="subtitle" select="$feed/atom:subtitle | $feed/description"/>
  <xsl:variable name="self" select="$feed/atom:link[@rel='self']/@href"/>
  <xsl:variable name="home" select="$feed/atom:link[@rel='alternate']/@href | /rss/channel/link"/>
  <xsl:variable name="format">
    <xsl:choose>
      <xsl:when test="/atom:feed">Atom</xsl:when>
      <xsl:otherwise>RSS</xsl:otherwise>
    </xsl:choose>
  </xsl:variable>

  <xsl:template match="/">
    <html lang="fr">
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="robots" content="noindex"/>
        <title>Fil <xsl:value-of select="$format"/> – <xsl:value-of select="$title"/></title>
        <link rel="stylesheet" href="/theme/feeds/feed.css"/>
      </head>
      <body>
        <header class="feed-about">
          <p class="kind">Fil d’actualité <xsl:value-of select="$format"/></p>
          <h1><xsl:value-of select="$title"/></h1>
          <p><xsl:value-of select="$subtitle"/></p>
        </header>
        <main>
          <section class="how" aria-labelledby="comment">
            <h2 id="comment">Qu’est-ce qu’un fil, et comment le suivre&#160;?</h2>
            <p>Cette page est un <strong>fil d’actualité</strong> (ou flux)&#160;: la liste des derniers billets,
              dans un format que lisent les <strong>lecteurs de flux</strong>. Abonné à ce fil, votre lecteur vous
              apporte chaque nouveau billet dès sa parution, en entier, sans que vous ayez à revenir sur le site,
              sans compte ni publicité, et sans que nous sachions qui vous êtes.</p>
            <p>Pour le suivre, copiez cette adresse et collez-la dans votre lecteur de flux (application sur
              ordinateur ou téléphone, service en ligne, ou le logiciel de messagerie Thunderbird)&#160;:</p>
            <p class="address"><code><xsl:value-of select="$self"/></code></p>
            <p>Vous n’avez pas de lecteur de flux&#160;? Recevez plutôt les billets par e-mail, ci-dessous.</p>
          </section>

          <section class="entries" aria-labelledby="derniers">
            <h2 id="derniers">Les derniers billets</h2>
            <xsl:choose>
              <xsl:when test="$feed/atom:entry | $feed/item">
                <ol>
                  <xsl:apply-templates select="$feed/atom:entry | $feed/item"/>
                </ol>
              </xsl:when>
              <xsl:otherwise><p>Aucun billet pour l’instant.</p></xsl:otherwise>
            </xsl:choose>
          </section>

          <section class="newsletter" aria-labelledby="lettre">
            <h2 id="lettre">Ou recevez chaque billet par e-mail</h2>
            <p>Une lettre par nouveau billet, et rien d’autre. Nous ne conservons que votre adresse e-mail&#160;;
              un lien de confirmation vous sera envoyé, et chaque lettre contient un lien de désinscription immédiate.</p>
            <form method="post" action="/newsletter/inscription">
              <label for="email">Votre adresse e-mail</label>
              <input type="email" id="email" name="email" required="required" autocomplete="email" maxlength="254"/>
              <div class="hp" aria-hidden="true">
                <label>Ne pas remplir <input type="text" name="site_web" tabindex="-1" autocomplete="off"/></label>
              </div>
              <button type="submit">S’abonner par e-mail</button>
            </form>
          </section>
        </main>
        <footer>
          <p><a href="{$home}">Retour au site</a> · <a href="/confidentialite/">Confidentialité</a></p>
        </footer>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="atom:entry">
    <li>
      <h3><a href="{atom:link[not(@rel) or @rel='alternate'][1]/@href}"><xsl:value-of select="atom:title"/></a></h3>
      <p class="date"><time datetime="{atom:published}">
        <xsl:call-template name="french-date">
          <xsl:with-param name="day" select="number(substring(atom:published, 9, 2))"/>
          <xsl:with-param name="month" select="number(substring(atom:published, 6, 2))"/>
          <xsl:with-param name="year" select="substring(atom:published, 1, 4)"/>
        </xsl:call-template>
      </time></p>
      <p><xsl:value-of select="atom:summary"/></p>
    </li>
  </xsl:template>

  <!-- RSS dates are RFC 822: "Mon, 09 Jan 2017 00:00:00 +0100". -->
  <xsl:template match="item">
    <li>
      <h3><a href="{link}"><xsl:value-of select="title"/></a></h3>
      <p class="date"><time>
        <xsl:call-template name="french-date">
          <xsl:with-param name="day" select="number(substring(pubDate, 6, 2))"/>
          <xsl:with-param name="month"
              select="string-length(substring-before('JanFebMarAprMayJunJulAugSepOctNovDec', substring(pubDate, 9, 3))) div 3 + 1"/>
          <xsl:with-param name="year" select="substring(pubDate, 13, 4)"/>
        </xsl:call-template>
      </time></p>
      <p><xsl:value-of select="description"/></p>
    </li>
  </xsl:template>

  <!-- « 1er janvier 2017 », « 17 octobre 2015 ». -->
  <xsl:template name="french-date">
    <xsl:param name="day"/>
    <xsl:param name="month"/>
    <xsl:param name="year"/>
    <xsl:choose>
      <xsl:when test="$day = 1">1er</xsl:when>
      <xsl:otherwise><xsl:value-of select="$day"/></xsl:otherwise>
    </xsl:choose>
    <xsl:text> </xsl:text>
    <xsl:choose>
      <xsl:when test="$month = 1">janvier</xsl:when>
      <xsl:when test="$month = 2">février</xsl:when>
      <xsl:when test="$month = 3">mars</xsl:when>
      <xsl:when test="$month = 4">avril</xsl:when>
      <xsl:when test="$month = 5">mai</xsl:when>
      <xsl:when test="$month = 6">juin</xsl:when>
      <xsl:when test="$month = 7">juillet</xsl:when>
      <xsl:when test="$month = 8">août</xsl:when>
      <xsl:when test="$month = 9">septembre</xsl:when>
      <xsl:when test="$month = 10">octobre</xsl:when>
      <xsl:when test="$month = 11">novembre</xsl:when>
      <xsl:otherwise>décembre</xsl:otherwise>
    </xsl:choose>
    <xsl:text> </xsl:text>
    <xsl:value-of select="$year"/>
  </xsl:template>
</xsl:stylesheet>
