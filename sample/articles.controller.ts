import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  NotFoundException,
  Param,
  Patch,
  Post,
  Req,
  UnauthorizedException,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsArray, IsIn, IsOptional, IsString, MaxLength, MinLength } from 'class-validator';
import { In, type Repository } from 'typeorm';
import { Article, Author, Tag } from './entities.js';

class CreateArticleDto {
  @IsString() @MinLength(1) @MaxLength(200) title!: string;
  @IsOptional() @IsString() @MaxLength(10_000) body?: string;
  @IsOptional() @IsArray() @IsString({ each: true }) tags?: string[];
}

class UpdateArticleDto {
  @IsOptional() @IsString() @MinLength(1) @MaxLength(200) title?: string;
  @IsOptional() @IsString() @MaxLength(10_000) body?: string;
  @IsOptional() @IsIn(['PENDING', 'PUBLISHED']) state?: 'PENDING' | 'PUBLISHED';
  @IsOptional() @IsArray() @IsString({ each: true }) tags?: string[];
}

/** `/articles` CRUD: every `save()`/`remove()` here fires the Article's model events. */
@Controller('articles')
export class ArticlesController {
  constructor(
    @InjectRepository(Article) private readonly articles: Repository<Article>,
    @InjectRepository(Author) private readonly authors: Repository<Author>,
    @InjectRepository(Tag) private readonly tags: Repository<Tag>,
  ) {}

  @Get()
  list(): Promise<Article[]> {
    return this.articles.find({ order: { id: 'ASC' } });
  }

  @Get(':uuid')
  get(@Param('uuid') uuid: string): Promise<Article> {
    return this.find(uuid);
  }

  @Post()
  async create(@Req() req: any, @Body() dto: CreateArticleDto): Promise<Article> {
    const author = await this.authorOf(req);
    const article = this.articles.create({
      title: dto.title,
      body: dto.body ?? '',
      author,
      tags: await this.tagsNamed(dto.tags ?? []),
    });
    return this.articles.save(article);
  }

  @Patch(':uuid')
  async update(
    @Req() req: any,
    @Param('uuid') uuid: string,
    @Body() dto: UpdateArticleDto,
  ): Promise<Article> {
    await this.authorOf(req);
    const article = await this.find(uuid);
    if (dto.title !== undefined) article.title = dto.title;
    if (dto.body !== undefined) article.body = dto.body;
    if (dto.state !== undefined) article.state = dto.state;
    if (dto.tags !== undefined) article.tags = await this.tagsNamed(dto.tags);
    return this.articles.save(article);
  }

  @Delete(':uuid')
  @HttpCode(204)
  async remove(@Req() req: any, @Param('uuid') uuid: string): Promise<void> {
    await this.authorOf(req);
    await this.articles.remove(await this.find(uuid));
  }

  private async find(uuid: string): Promise<Article> {
    const article = /^[0-9a-f-]{36}$/i.test(uuid) ? await this.articles.findOneBy({ uuid }) : null;
    if (!article) throw new NotFoundException(`No article ${uuid}`);
    return article;
  }

  private async authorOf(req: any): Promise<Author> {
    if (!req.user) throw new UnauthorizedException('Send Authorization: Bearer <token>');
    const author = await this.authors.findOne({ where: { account: { user: { id: req.user.id } } } });
    if (!author) throw new UnauthorizedException('This user is not an author');
    return author;
  }

  private async tagsNamed(names: string[]): Promise<Tag[]> {
    const unique = [...new Set(names)];
    const existing = unique.length ? await this.tags.findBy({ name: In(unique) }) : [];
    const missing = unique.filter((n) => !existing.some((t) => t.name === n));
    const created = missing.length
      ? await this.tags.save(missing.map((name) => this.tags.create({ name })))
      : [];
    return [...existing, ...created];
  }
}
